// The fault switchboard (#/faults; docs/faults-and-chaos.md): the plan's rules with their fired
// counts, live; an operator switches, adds and removes rules, a viewer reads.
import { api } from './api.js';
import { $, append, h, keyedRows, mainView, table } from './dom.js';
import { faultForm, vocabularyOf } from './fault-form.js';
import { FAULT_COLUMNS, faultRow } from './fault-rows.js';
import { tick } from './poll.js';
import { isCurrent, isOperator, state } from './state.js';

/** A rule as PUT takes it back: everything but its count. */
function planRule(r) {
  const { fired: _fired, ...rest } = r;
  return rest;
}

const INTRO =
  'The fault switchboard: the first rule, in plan order, that is on, targets an attempt, is within its limit and passes its probability draw fires. Fired counts since the plan was last replaced.';

function offNotice() {
  return h(
    'div',
    { class: 'card notice', role: 'status', 'data-testid': 'faults-off', hidden: true },
    h('strong', {}, 'The fault switchboard is off.'),
    ' Start the gateway with ',
    h('code', {}, 'FAULTS_ENABLED=1'),
    ' (and the participants too, for faults that act there) to rehearse failures from here.',
  );
}

/** The operator's changes to the plan: each says how it went in `say`, and refreshes. */
function planChanges(plan, say) {
  const put = async (next, done) => {
    plan.busy = true;
    try {
      const body = await api('PUT', '/api/faults', { rules: next.map(planRule) });
      plan.shown(body);
      say(done, 'ok');
    } finally {
      plan.busy = false;
    }
  };
  const failed = (what, err) => say(`${what}: ${err.message}${err.code ? ` (${err.code})` : ''}`, 'error');
  return {
    add: (rule) =>
      put([...plan.rules, rule], `Rule ${rule.id} added; the plan was replaced (every count restarted at 0).`),
    async toggle(id, enabled) {
      plan.busy = true;
      say(`Switching ${id} ${enabled ? 'on' : 'off'}…`);
      try {
        const r = await api('POST', `/api/faults/${encodeURIComponent(id)}`, { enabled });
        say(`Rule ${r.rule.id} is ${r.rule.enabled ? 'on' : 'off'}.`, 'ok');
      } catch (err) {
        failed('Not switched', err);
      } finally {
        plan.busy = false;
        tick();
      }
    },
    async remove(id) {
      say(`Removing ${id}…`);
      try {
        await put(
          plan.rules.filter((r) => r.id !== id),
          `Rule ${id} removed.`,
        );
      } catch (err) {
        failed('Not removed', err);
      } finally {
        tick();
      }
    },
  };
}

export function faultsView(token) {
  const operator = isOperator();
  const tbody = h('tbody', { 'data-testid': 'fault-rows' });
  const empty = h(
    'p',
    { class: 'muted', 'data-testid': 'faults-empty', hidden: true },
    'No rule: nothing is injected.',
  );
  const message = h('p', {
    class: 'action-message',
    role: 'status',
    'aria-live': 'polite',
    'data-testid': 'fault-message',
  });
  const say = (text, kind) => {
    message.className = `action-message${kind ? ` ${kind}` : ''}`;
    message.textContent = text;
  };
  const off = offNotice();
  const on = h('div', { 'data-testid': 'faults-on', hidden: true });
  const showRows = keyedRows(tbody, (r) => faultRow(r, operator, changes));
  /** The plan as last read (what a PUT adds to or removes from), and whether a change is under way. */
  const plan = { rules: [], busy: false, shown: (body) => isCurrent(token) && show(body) };
  const changes = planChanges(plan, say);
  const form = operator ? faultForm(changes.add) : null;
  const show = (body) => {
    plan.rules = body.rules;
    off.hidden = true;
    on.hidden = false;
    showRows(body.rules);
    empty.hidden = body.rules.length > 0;
    form?.setVocabulary(vocabularyOf(body));
  };
  const switchedOff = () => {
    off.hidden = false;
    on.hidden = true;
  };
  append(on, [
    h(
      'div',
      { class: 'table-wrap' },
      table(
        { class: 'list faults', 'data-testid': 'fault-table' },
        'Fault rules, in plan order (the first that matches an attempt fires)',
        FAULT_COLUMNS(operator),
        tbody,
      ),
    ),
    empty,
    message,
    form?.el ??
      h(
        'p',
        { class: 'muted', 'data-testid': 'faults-read-only' },
        'You are a viewer: only an operator changes the plan.',
      ),
  ]);
  mainView().replaceChildren(
    h('section', { 'data-testid': 'faults-view' }, h('h1', {}, 'Faults'), h('p', { class: 'muted' }, INTRO), off, on),
  );

  return async () => {
    if (plan.busy) return;
    // Off (the session says so): no request whose 404 the browser would log as an error.
    if (!state.session?.faults) return switchedOff();
    const body = await api('GET', '/api/faults').catch((err) => {
      if (err.status !== 404) throw err;
      return null;
    });
    if (!isCurrent(token) || plan.busy) return;
    $('[data-testid="nav-faults"]').hidden = !body;
    if (!body) return switchedOff();
    show(body);
  };
}
