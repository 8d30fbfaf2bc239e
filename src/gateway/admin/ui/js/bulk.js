// Bulk actions (#/bulk, #/bulk/<id>): one action on the sagas a filter selects, with a cap on the
// blast radius. The operator fills the filter, sees the dry run (how many, what the engine would
// refuse, the money and stock the rest would move: the server's sums, never the page's), then
// starts the job at a rate; its page shows the progress and each saga's result, live, with pause,
// resume and cancel. The choices (actions, statuses, steps) are the server's.
import { api } from './api.js';
import { h, keyedRows, mainView, setOptions, table } from './dom.js';
import { fmtCents, fmtTime } from './format.js';
import { tick } from './poll.js';
import { isCurrent, isOperator, state } from './state.js';

function field(label, control, hint) {
  return h(
    'label',
    { class: 'field', for: control.id },
    h('span', {}, label),
    control,
    hint ? h('span', { class: 'hint muted' }, hint) : null,
  );
}

function bulkInputs() {
  const input = (id, attrs = {}) =>
    h('input', {
      id: `bulk-${id}`,
      name: id,
      autocomplete: 'off',
      spellcheck: 'false',
      'data-testid': `bulk-${id}`,
      ...attrs,
    });
  const select = (id) => h('select', { id: `bulk-${id}`, name: id, 'data-testid': `bulk-${id}` });
  return {
    action: select('action'),
    status: select('status'),
    step: select('step'),
    failureCode: input('failure-code', { placeholder: 'e.g. payment_declined' }),
    customer: input('customer', { placeholder: 'e.g. cust_123' }),
    from: input('from', { placeholder: 'e.g. 2026-12-06T10:00:00Z' }),
    to: input('to', { placeholder: 'e.g. 2026-12-06T12:00:00Z' }),
    note: input('note', { maxlength: state.facts?.note_max_length ?? 1000 }),
    cap: input('cap', { type: 'number', min: 1, max: 10000, step: 1, required: true, inputmode: 'numeric' }),
    rate: input('rate', { type: 'number', min: 0.1, max: 50, step: 'any', value: '5', inputmode: 'decimal' }),
  };
}

/** The request the form says, as the API takes it (a number left as typed when it is not one: the server names it). */
function requestOf(f) {
  const filter = {};
  const put = (k, el) => {
    const v = el.value.trim();
    if (v) filter[k] = v;
  };
  put('status', f.status);
  put('step', f.step);
  put('failure_code', f.failureCode);
  put('customer', f.customer);
  put('from', f.from);
  put('to', f.to);
  const num = (el) =>
    el.value.trim() === '' ? undefined : Number.isFinite(Number(el.value)) ? Number(el.value) : el.value;
  const body = { action: f.action.value, filter };
  const cap = num(f.cap);
  if (cap !== undefined) body.cap = cap;
  const rate = num(f.rate);
  if (rate !== undefined) body.rate = rate;
  if (f.note.value.trim()) body.note = f.note.value;
  return body;
}

function moneyLine(t) {
  const parts = [
    t.charge_cents > 0 ? `charges ${fmtCents(t.charge_cents)}` : null,
    t.refund_cents > 0 ? `refunds ${fmtCents(t.refund_cents)}` : null,
  ].filter(Boolean);
  return parts.length > 0 ? parts.join(', ') : 'no money moves';
}

function dryRunCard(d, cap) {
  return h(
    'div',
    { class: 'card', 'data-testid': 'bulk-dry-run' },
    h(
      'p',
      {},
      h('strong', { 'data-testid': 'bulk-dry-count' }, String(d.count)),
      ` saga(s) selected for ${d.action}`,
      d.truncated ? h('span', { 'data-testid': 'bulk-dry-truncated' }, ` (more match: only the newest ${cap})`) : null,
      '; ',
      h('strong', { 'data-testid': 'bulk-dry-allowed' }, String(d.allowed)),
      ' allowed now.',
    ),
    d.refused.length > 0
      ? h(
          'ul',
          { 'data-testid': 'bulk-dry-refused' },
          d.refused.map((r) =>
            h(
              'li',
              { 'data-testid': 'bulk-dry-refusal', 'data-code': r.code },
              `${r.count} × ${r.code}: e.g. ${r.example}`,
            ),
          ),
        )
      : null,
    h('p', {}, 'For certain: ', h('span', { 'data-testid': 'bulk-dry-money' }, moneyLine(d.totals))),
    d.totals.stock.length > 0
      ? h(
          'ul',
          { 'data-testid': 'bulk-dry-stock' },
          d.totals.stock.map((m) =>
            h(
              'li',
              { 'data-testid': 'bulk-dry-stock-line', 'data-item': m.item, 'data-direction': m.direction },
              `${m.direction}s ${m.quantity} × ${m.item}`,
            ),
          ),
        )
      : h('p', { class: 'muted' }, 'No stock moves.'),
    'Nothing was changed.',
  );
}

function progressText(j) {
  const done = j.total - j.counts.pending;
  return `${done} / ${j.total}`;
}

function jobRow(j) {
  const state_ = h('td', { 'data-label': 'State', 'data-testid': 'bulk-job-state' });
  const progress = h('td', { 'data-label': 'Done', 'data-testid': 'bulk-job-progress' });
  const counts = h('td', { 'data-label': 'Results' });
  const el = h(
    'tr',
    { 'data-testid': 'bulk-job-row', 'data-id': j.id },
    h(
      'td',
      { 'data-label': 'Job' },
      h('a', { href: `#/bulk/${encodeURIComponent(j.id)}`, class: 'mono', 'data-focus': `bulk-${j.id}` }, j.id),
    ),
    h('td', { 'data-label': 'Action' }, j.action),
    state_,
    progress,
    counts,
    h('td', { 'data-label': 'Rate' }, `${j.rate}/s`),
    h('td', { 'data-label': 'By' }, j.actor),
    h('td', { 'data-label': 'Started', class: 'nowrap' }, fmtTime(j.created_at)),
  );
  return {
    el,
    update(x) {
      state_.textContent = x.state;
      progress.textContent = progressText(x);
      counts.textContent = `applied ${x.counts.applied}, replayed ${x.counts.replayed}, refused ${x.counts.refused}, failed ${x.counts.failed}`;
    },
  };
}

export function bulkView(token) {
  const operator = isOperator();
  const f = bulkInputs();
  setOptions(
    f.action,
    (state.facts?.actions ?? []).map((a) => [a, a]),
  );
  setOptions(f.status, [['', 'any'], ...(state.facts?.statuses ?? []).map((s) => [s, s])]);
  f.status.value = 'PARKED';
  setOptions(f.step, [['', 'any']]);
  const message = h('p', { class: 'action-message', role: 'status', 'data-testid': 'bulk-message' });
  const result = h('div', { 'data-testid': 'bulk-dry-slot' });
  const start = h('button', { type: 'button', class: 'primary', 'data-testid': 'bulk-start', disabled: true }, 'Start');
  const dry = h('button', { type: 'submit', 'data-testid': 'bulk-dry-run-button' }, 'Dry run');
  // Start acts on what the last dry run showed: any change to the form asks for a new dry run.
  let dried = null;
  const form = h(
    'form',
    { class: 'fault-form', 'data-testid': 'bulk-form', novalidate: true },
    h('h2', {}, 'New bulk action'),
    h(
      'p',
      { class: 'muted' },
      'Select sagas, look at the dry run, then start: the selection is frozen then, at most the cap, and each saga is acted on once at the rate.',
    ),
    h(
      'div',
      { class: 'fault-fields' },
      field('Action', f.action),
      field('Status', f.status),
      field('Step', f.step),
      field('Failure code', f.failureCode),
      field('Customer', f.customer),
      field('Created from', f.from, 'ISO 8601 with its zone, a date, or epoch ms'),
      field('Created to', f.to),
      field('Note', f.note, 'required for resolve'),
      field('Cap', f.cap, 'the most sagas to act on (1-10000)'),
      field('Rate', f.rate, 'sagas per second (0.1-50)'),
    ),
    h('div', { class: 'buttons' }, dry, start),
    message,
    result,
  );
  const changed = () => {
    dried = null;
    start.disabled = true;
  };
  form.addEventListener('input', changed);
  form.addEventListener('change', changed);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    message.textContent = '';
    message.classList.remove('error');
    const body = requestOf(f);
    try {
      const d = await api('POST', '/api/bulk/dry-run', body);
      if (!isCurrent(token)) return;
      result.replaceChildren(dryRunCard(d, body.cap));
      dried = d.count > 0 ? body : null;
      start.disabled = dried === null;
    } catch (err) {
      result.replaceChildren();
      message.textContent = err.message;
      message.classList.add('error');
    }
  });
  start.addEventListener('click', async () => {
    if (!dried) return;
    start.disabled = true;
    try {
      const job = await api('POST', '/api/bulk', dried);
      location.hash = `#/bulk/${encodeURIComponent(job.id)}`;
    } catch (err) {
      message.textContent = err.message;
      message.classList.add('error');
    }
  });

  const tbody = h('tbody', { 'data-testid': 'bulk-job-rows' });
  const empty = h('p', { class: 'muted', 'data-testid': 'bulk-empty', hidden: true }, 'No bulk job yet.');
  mainView().replaceChildren(
    h(
      'section',
      { 'data-testid': 'bulk-view' },
      h('h1', {}, 'Bulk actions'),
      operator ? form : h('p', { class: 'muted' }, 'Only an operator starts bulk actions.'),
      h('h2', {}, 'Jobs'),
      h(
        'div',
        { class: 'table-wrap' },
        table(
          { class: 'list', 'data-testid': 'bulk-jobs' },
          'Bulk jobs, newest first',
          ['Job', 'Action', 'State', 'Done', 'Results', 'Rate', 'By', 'Started'],
          tbody,
        ),
      ),
      empty,
    ),
  );
  const show = keyedRows(tbody, jobRow);
  let stepsShown = false;
  return async () => {
    const [body, sagas] = await Promise.all([
      api('GET', '/api/bulk?limit=50'),
      stepsShown ? null : api('GET', '/api/sagas?limit=1'),
    ]);
    if (!isCurrent(token)) return;
    if (sagas) {
      stepsShown = true;
      setOptions(f.step, [['', 'any'], ...sagas.steps.map((s) => [s, s])]);
    }
    show(body.jobs);
    empty.hidden = body.jobs.length > 0;
  };
}

function itemRow(i) {
  const result = h('td', { 'data-label': 'Result', 'data-testid': 'bulk-item-result' });
  const why = h('td', { 'data-label': 'Detail', 'data-testid': 'bulk-item-detail' });
  const at = h('td', { 'data-label': 'At', class: 'nowrap' });
  const el = h(
    'tr',
    { 'data-testid': 'bulk-item-row', 'data-saga': i.saga_id },
    h('td', { 'data-label': '#' }, String(i.position + 1)),
    h(
      'td',
      { 'data-label': 'Saga' },
      h('a', { href: `#/sagas/${encodeURIComponent(i.saga_id)}`, class: 'mono' }, i.saga_id),
    ),
    result,
    why,
    at,
  );
  return {
    el,
    update(x) {
      result.textContent = x.result;
      el.dataset.result = x.result;
      why.textContent = x.code ? `${x.code}: ${x.message ?? ''}` : (x.message ?? '');
      at.textContent = x.at ? fmtTime(x.at) : '–';
    },
  };
}

/** One job (#/bulk/<id>): its progress and every saga's result, live; pause, resume, cancel for an operator. */
export function bulkJobView(id, token) {
  const title = h('h1', {}, 'Bulk job ', h('span', { class: 'mono' }, id));
  const stateEl = h('strong', { 'data-testid': 'bulk-state' });
  const progress = h('span', { 'data-testid': 'bulk-progress' });
  const bar = h('progress', { max: 1, value: 0, 'data-testid': 'bulk-bar' });
  const counts = h('span', { 'data-testid': 'bulk-counts' });
  const facts = h('p', { class: 'muted', 'data-testid': 'bulk-facts' });
  const message = h('p', { class: 'action-message', role: 'status', 'data-testid': 'bulk-job-message' });
  const command = (name, label) => {
    const b = h('button', { type: 'button', 'data-testid': `bulk-${name}`, hidden: true }, label);
    b.addEventListener('click', async () => {
      b.disabled = true;
      message.textContent = '';
      message.classList.remove('error');
      try {
        await api('POST', `/api/bulk/${encodeURIComponent(id)}/${name}`);
      } catch (err) {
        message.textContent = err.message;
        message.classList.add('error');
      } finally {
        b.disabled = false;
      }
      tick();
    });
    return b;
  };
  const buttons = {
    pause: command('pause', 'Pause'),
    resume: command('resume', 'Resume'),
    cancel: command('cancel', 'Cancel'),
  };
  const tbody = h('tbody', { 'data-testid': 'bulk-item-rows' });
  mainView().replaceChildren(
    h(
      'section',
      { 'data-testid': 'bulk-job-view', 'data-id': id },
      h('p', {}, h('a', { href: '#/bulk' }, '← Bulk actions')),
      title,
      h('p', {}, stateEl, ' · ', progress, ' ', bar, ' · ', counts),
      facts,
      isOperator() ? h('div', { class: 'buttons actions' }, buttons.pause, buttons.resume, buttons.cancel) : null,
      message,
      h(
        'div',
        { class: 'table-wrap' },
        table(
          { class: 'list', 'data-testid': 'bulk-items' },
          'What the action did to each saga, in selection order',
          ['#', 'Saga', 'Result', 'Detail', 'At'],
          tbody,
        ),
      ),
    ),
  );
  const show = keyedRows(tbody, itemRow);
  return async () => {
    const body = await api('GET', `/api/bulk/${encodeURIComponent(id)}?limit=1000`);
    if (!isCurrent(token)) return;
    const j = body.job;
    stateEl.textContent = j.state;
    progress.textContent = progressText(j);
    bar.max = Math.max(1, j.total);
    bar.value = j.total - j.counts.pending;
    counts.textContent = `applied ${j.counts.applied}, replayed ${j.counts.replayed}, refused ${j.counts.refused}, failed ${j.counts.failed}`;
    const filter = Object.entries(j.filter)
      .filter(([, v]) => v !== null)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
    facts.textContent = `${j.action} at ${j.rate}/s, cap ${j.cap}, by ${j.actor}; filter: ${filter || 'none'}${j.note ? `; note: ${j.note}` : ''}`;
    buttons.pause.hidden = j.state !== 'running';
    buttons.resume.hidden = j.state !== 'paused';
    buttons.cancel.hidden = j.state !== 'running' && j.state !== 'paused';
    show(body.items.map((i) => ({ ...i, id: i.saga_id })));
  };
}
