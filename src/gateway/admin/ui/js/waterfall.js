// A saga's waterfall: one row per attempt (attempts.js), its offset and length on the saga's span.
import { attemptsOf } from './attempts.js';
import { h } from './dom.js';
import { fmtDuration } from './format.js';
import { state } from './state.js';

export function faultBadge(fault, testid) {
  return h(
    'span',
    {
      class: 'badge fault',
      'data-testid': testid,
      'data-rule': fault.rule ?? '',
      title: fault.rule ? `injected by the fault rule ${fault.rule}` : 'injected by the fault switchboard',
    },
    fault.rule ? `fault ${fault.rule}` : 'fault',
  );
}

/** The rows for `saga` and its events, in `el`: offsets from the saga's start, scaled to its span (up to now while it moves). */
export function renderWaterfall(el, saga, events) {
  const bars = attemptsOf(events);
  const started = events.find((e) => e.type === 'SAGA_STARTED');
  const t0 = Date.parse(started?.time ?? saga.created_at);
  const lastAt = events.length ? Date.parse(events.at(-1).time) : t0;
  const terminal = state.facts.terminal_statuses.includes(saga.status);
  const tEnd = Math.max(terminal ? lastAt : Date.now(), t0 + 1);
  const rows = bars.map((b) => waterfallRow(b, t0, tEnd));
  el.replaceChildren(
    rows.length
      ? h(
          'ol',
          {
            class: 'waterfall',
            'data-testid': 'waterfall',
            'aria-label': 'One row per step attempt and compensation attempt',
          },
          rows,
        )
      : h('p', { class: 'muted' }, 'No step has started yet.'),
  );
}

function waterfallRow(b, t0, tEnd) {
  const span = tEnd - t0;
  const end = b.end ?? (b.outcome === 'running' ? tEnd : b.start);
  const left = Math.min(((b.start - t0) / span) * 100, 99.6);
  const bar = h('span', { class: `bar ${b.phase} ${b.outcome}`, 'aria-hidden': 'true' });
  bar.style.left = `${left}%`;
  bar.style.width = `${Math.min(Math.max(((end - b.start) / span) * 100, 0.4), 100 - left)}%`;
  const duration =
    b.end !== null ? fmtDuration(b.end - b.start) : b.outcome === 'running' ? 'running…' : 'no outcome (interrupted)';
  return h(
    'li',
    {
      class: `wf-row ${b.phase}`,
      'data-testid': 'waterfall-row',
      'data-seq': b.seq,
      'data-step': b.step,
      'data-phase': b.phase,
      'data-attempt': b.attempt,
      'data-outcome': b.outcome,
      'data-fault': b.fault ? (b.fault.rule ?? '') : null,
    },
    h(
      'div',
      { class: 'wf-label' },
      h('span', { class: 'wf-step' }, b.step),
      b.display && b.display !== b.step ? h('span', { class: 'wf-display muted' }, b.display) : null,
      h('span', { class: `wf-phase ${b.phase}` }, b.phase),
      h('span', { class: 'wf-attempt' }, `attempt ${b.attempt}`),
      b.fault ? faultBadge(b.fault, 'wf-fault') : null,
    ),
    h('div', { class: 'wf-track' }, bar),
    h(
      'div',
      { class: 'wf-meta' },
      h('span', { 'data-testid': 'wf-offset' }, `+${fmtDuration(b.start - t0)}`),
      h('span', { 'data-testid': 'wf-duration' }, duration),
      h('span', { class: `outcome ${b.outcome}`, 'data-testid': 'wf-outcome' }, b.outcome.replace('-', ', ')),
      b.key ? h('span', { class: 'mono key', title: 'idempotency key', 'data-testid': 'wf-key' }, b.key) : null,
      b.error ? h('span', { class: 'error', 'data-testid': 'wf-error' }, b.error) : null,
    ),
  );
}
