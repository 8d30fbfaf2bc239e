// A rule of the fault plan as a row of the Faults page: its switch (operator) or state (viewer),
// target, phase, kind, parameters, probability, limit, fired count, and its Remove button.
import { h } from './dom.js';
import { fmtTime } from './format.js';

export function fmtTarget(t = {}) {
  const parts = [];
  if (t.step) parts.push(`step ${t.step}`);
  if (t.participant || t.method) parts.push([t.participant, t.method].filter(Boolean).join('.'));
  return parts.length ? parts.join(' · ') : 'every step';
}

export function fmtFaultParams(r) {
  if (r.kind === 'latency') return `${r.latency_ms ?? 0} ms${r.jitter_ms ? ` + up to ${r.jitter_ms} ms` : ''}`;
  if (r.kind === 'crash') return r.crash_point ? `at ${r.crash_point}` : 'at its default point';
  return '–';
}

export function fmtLimit(l) {
  if (!l || (l.count === undefined && l.until === undefined)) return 'none';
  return [l.count !== undefined ? `${l.count}×` : null, l.until ? `until ${fmtTime(l.until)}` : null]
    .filter(Boolean)
    .join(', ');
}

export const FAULT_COLUMNS = (operator) => [
  'On',
  'Rule',
  'Target',
  'Phase',
  'Kind',
  'Parameters',
  'Probability',
  'Limit',
  'Fired',
  operator ? 'Remove' : null,
];

/** A row for rule `r`; `update(rule)` shows the rule as last read. `on.toggle(id, enabled)` and `on.remove(id)` act (operator). */
export function faultRow(r, operator, on) {
  const cells = {};
  const cell = (label, testid, cls) =>
    (cells[testid] = h('td', { 'data-label': label, 'data-testid': testid, class: cls }));
  const toggle = operator
    ? h('button', {
        type: 'button',
        role: 'switch',
        class: 'toggle',
        'data-testid': 'fault-toggle',
        'data-focus': `fault-toggle-${r.id}`,
        'aria-label': `Rule ${r.id}`,
        onclick: (e) => on.toggle(r.id, e.currentTarget.getAttribute('aria-checked') !== 'true'),
      })
    : null;
  const state = operator ? null : h('span', { class: 'badge', 'data-testid': 'fault-state' });
  const remove = h(
    'button',
    {
      type: 'button',
      'data-testid': 'fault-remove',
      'data-focus': `fault-remove-${r.id}`,
      'aria-label': `Remove rule ${r.id}`,
      onclick: () => on.remove(r.id),
    },
    'Remove',
  );
  const el = h(
    'tr',
    { 'data-testid': 'fault-row', 'data-id': r.id },
    h('td', { 'data-label': 'On' }, toggle ?? state),
    h('td', { 'data-label': 'Rule', class: 'mono', 'data-testid': 'fault-id' }, r.id),
    cell('Target', 'fault-target'),
    cell('Phase', 'fault-phase', 'nowrap'),
    cell('Kind', 'fault-kind', 'nowrap'),
    cell('Parameters', 'fault-params'),
    cell('Probability', 'fault-probability', 'nowrap'),
    cell('Limit', 'fault-limit'),
    cell('Fired', 'fault-fired', 'nowrap'),
    operator ? h('td', { 'data-label': 'Remove' }, remove) : null,
  );
  const update = (x) => {
    el.dataset.enabled = String(x.enabled);
    if (toggle) {
      toggle.setAttribute('aria-checked', String(x.enabled));
      toggle.textContent = x.enabled ? 'On' : 'Off';
    }
    if (state) {
      state.textContent = x.enabled ? 'on' : 'off';
      state.className = `badge ${x.enabled ? 'st-parked' : 'st-resolved'}`;
    }
    cells['fault-target'].textContent = fmtTarget(x.target);
    cells['fault-phase'].textContent = x.phase ?? 'both';
    cells['fault-kind'].textContent = x.kind;
    cells['fault-params'].textContent = fmtFaultParams(x);
    cells['fault-probability'].textContent =
      typeof x.probability === 'number' ? `${Math.round(x.probability * 1000) / 10} %` : '–';
    cells['fault-limit'].textContent = fmtLimit(x.limit);
    cells['fault-fired'].textContent = String(x.fired ?? 0);
  };
  return { el, update };
}
