// The operator's form to add a fault rule. Its choices (kinds, steps, participants, methods,
// phases, crash points) are the server's vocabulary (GET /api/faults `vocabulary`), never a list
// of the page's own; the server's refusal of a rule is shown as it says it.
import { h, setOptions } from './dom.js';

const strings = (x) => (Array.isArray(x) ? x.filter((s) => typeof s === 'string') : []);

/** The `vocabulary` of a GET /api/faults answer, read defensively (empty lists when absent). */
export function vocabularyOf(body) {
  const v = body?.vocabulary && typeof body.vocabulary === 'object' ? body.vocabulary : {};
  const calls = Array.isArray(v.calls)
    ? v.calls.filter((c) => typeof c?.participant === 'string' && typeof c?.method === 'string')
    : [];
  return {
    kinds: strings(v.kinds),
    participants: strings(v.participants),
    phases: strings(v.phases),
    crash_points: strings(v.crash_points),
    steps: strings(v.steps),
    calls,
  };
}

/** The form's inputs, by name. */
function faultInputs() {
  const select = (id) => h('select', { id, name: id, 'data-testid': id });
  const input = (id, attrs = {}) =>
    h('input', { id, name: id, autocomplete: 'off', spellcheck: 'false', 'data-testid': id, ...attrs });
  const number = (id, attrs) => input(id, { type: 'number', step: 1, min: 0, inputmode: 'numeric', ...attrs });
  return {
    id: input('fault-new-id', { required: true, placeholder: 'e.g. refuse-reserve' }),
    kind: select('fault-new-kind'),
    step: select('fault-new-step'),
    participant: select('fault-new-participant'),
    method: input('fault-new-method', { list: 'fault-methods', placeholder: 'e.g. Charge' }),
    methods: h('datalist', { id: 'fault-methods' }),
    phase: select('fault-new-phase'),
    latency: number('fault-new-latency'),
    jitter: number('fault-new-jitter'),
    crashPoint: select('fault-new-crash-point'),
    probability: number('fault-new-probability', { max: 1, step: 'any', value: '1', inputmode: 'decimal' }),
    count: number('fault-new-count', { min: 1 }),
    until: input('fault-new-until', { type: 'datetime-local' }),
    enabled: h('input', {
      id: 'fault-new-enabled',
      type: 'checkbox',
      checked: true,
      'data-testid': 'fault-new-enabled',
    }),
  };
}

/** A number field's value: a number, or the text as typed when it is not one (the server names it). */
function num(el) {
  const v = el.value.trim();
  if (v === '') return el.validity?.badInput ? 'not a number' : undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : v;
}

/** The rule the form describes, as PUT /api/faults takes it. */
function ruleOf(f) {
  const rule = { id: f.id.value.trim(), kind: f.kind.value, enabled: f.enabled.checked, target: {} };
  if (f.step.value) rule.target.step = f.step.value;
  if (f.participant.value) rule.target.participant = f.participant.value;
  if (f.method.value.trim()) rule.target.method = f.method.value.trim();
  if (f.phase.value) rule.phase = f.phase.value;
  if (f.kind.value === 'latency') {
    const [l, j] = [num(f.latency), num(f.jitter)];
    if (l !== undefined) rule.latency_ms = l;
    if (j !== undefined) rule.jitter_ms = j;
  }
  if (f.kind.value === 'crash' && f.crashPoint.value) rule.crash_point = f.crashPoint.value;
  const p = num(f.probability);
  if (p !== undefined) rule.probability = p;
  const c = num(f.count);
  const u = f.until.value ? new Date(f.until.value) : null;
  if (c !== undefined || u) rule.limit = {};
  if (c !== undefined) rule.limit.count = c;
  if (u) rule.limit.until = Number.isNaN(u.getTime()) ? f.until.value : u.toISOString();
  return rule;
}

/** The form's choices from the server's vocabulary; the methods follow the chosen participant. */
function chooser(f, kindChanged) {
  let vocabulary = vocabularyOf(null);
  const syncMethods = () => {
    const methods = vocabulary.calls
      .filter((c) => !f.participant.value || c.participant === f.participant.value)
      .map((c) => c.method);
    f.methods.replaceChildren(...[...new Set(methods)].map((m) => h('option', { value: m })));
  };
  f.participant.addEventListener('change', syncMethods);
  return (v) => {
    vocabulary = v;
    setOptions(
      f.kind,
      v.kinds.map((k) => [k, k]),
    );
    setOptions(f.step, [['', 'any step'], ...v.steps.map((s) => [s, s])]);
    setOptions(f.participant, [['', 'any (in the gateway)'], ...v.participants.map((p) => [p, p])]);
    setOptions(f.phase, [['', 'both'], ...v.phases.map((p) => [p, p])]);
    setOptions(f.crashPoint, [['', 'default'], ...v.crash_points.map((p) => [p, p])]);
    syncMethods();
    kindChanged();
  };
}

/** `add(rule)` PUTs the plan with the rule (and throws the server's refusal). `setVocabulary(v)` fills the choices. */
export function faultForm(add) {
  const f = faultInputs();
  const field = (el, label, hint) =>
    h(
      'div',
      { class: 'field', 'data-field': el.id },
      h('label', { for: el.id }, label),
      el === f.method ? h('span', {}, f.method, f.methods) : el,
      hint ? h('span', { class: 'muted hint' }, hint) : null,
    );
  const error = h('p', { class: 'error', role: 'alert', 'data-testid': 'fault-form-error', hidden: true });
  const submit = h('button', { type: 'submit', class: 'primary', 'data-testid': 'fault-add' }, 'Add rule');
  const latencyFields = [field(f.latency, 'Latency (ms)'), field(f.jitter, 'Jitter (ms)')];
  const crashField = field(f.crashPoint, 'Crash point', 'gateway crashes only');
  // Which parameters a kind takes: latency its delay, crash its point.
  const kindChanged = () => {
    for (const el of latencyFields) el.hidden = f.kind.value !== 'latency';
    crashField.hidden = f.kind.value !== 'crash';
  };
  f.kind.addEventListener('change', kindChanged);
  kindChanged();
  const onsubmit = async (e) => {
    e.preventDefault();
    submit.disabled = true;
    error.hidden = true;
    try {
      await add(ruleOf(f));
      f.id.value = '';
      f.id.focus();
    } catch (err) {
      error.textContent = `${err.message}${err.code ? ` (${err.code})` : ''}`;
      error.hidden = false;
    } finally {
      submit.disabled = false;
    }
  };
  const el = h(
    'form',
    {
      class: 'card fault-form',
      'data-testid': 'fault-form',
      'aria-labelledby': 'fault-form-title',
      novalidate: true,
      onsubmit,
    },
    h('h2', { id: 'fault-form-title' }, 'Add a rule'),
    h(
      'p',
      { class: 'muted' },
      'Adding or removing a rule replaces the whole plan: every rule’s fired count restarts at 0. Switching a rule on or off keeps the counts.',
    ),
    h(
      'div',
      { class: 'fault-fields' },
      field(f.id, 'Rule id'),
      field(f.kind, 'Kind'),
      field(f.step, 'Step'),
      field(f.participant, 'Participant'),
      field(f.method, 'Method'),
      field(f.phase, 'Phase'),
      latencyFields,
      crashField,
      field(f.probability, 'Probability (0–1)'),
      field(f.count, 'Limit: times'),
      field(f.until, 'Limit: until'),
      h('div', { class: 'field check' }, f.enabled, h('label', { for: 'fault-new-enabled' }, 'On at once')),
    ),
    error,
    h('div', { class: 'buttons' }, submit),
  );
  return { el, setVocabulary: chooser(f, kindChanged) };
}
