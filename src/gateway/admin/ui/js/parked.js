// The PARKED queue (#/parked): oldest first, each with why it parked and, for an operator, the
// actions the server says it allows.
import { actionPanel } from './actions.js';
import { api } from './api.js';
import { h, keyedRows, mainView, table } from './dom.js';
import { fmtAge, fmtTime } from './format.js';
import { isCurrent, isOperator } from './state.js';

export function parkedView(token) {
  const tbody = h('tbody', { 'data-testid': 'parked-rows' });
  const empty = h('p', { class: 'muted', 'data-testid': 'parked-empty', hidden: true }, 'Nothing is parked.');
  mainView().replaceChildren(
    h(
      'section',
      { 'data-testid': 'parked-view' },
      h('h1', {}, 'Parked sagas'),
      h(
        'p',
        { class: 'muted' },
        'Oldest first: each waits for an operator (a compensation kept failing, or a step past the point of no return did).',
      ),
      h(
        'div',
        { class: 'table-wrap' },
        table(
          { class: 'list', 'data-testid': 'parked-table' },
          'Parked sagas, oldest first',
          ['Saga', 'Reason', 'Age', 'Parked at', isOperator() ? 'Actions' : null],
          tbody,
        ),
      ),
      empty,
    ),
  );
  const show = keyedRows(tbody, parkedRow);
  return async () => {
    const body = await api('GET', `/api/parked?limit=100`);
    if (!isCurrent(token)) return;
    show(body.sagas);
    empty.hidden = body.sagas.length > 0;
  };
}

function parkedRow(s) {
  const reason = h('td', { 'data-label': 'Reason', 'data-testid': 'parked-reason' });
  const age = h('td', { 'data-label': 'Age', 'data-testid': 'parked-age' });
  const since = h('td', { 'data-label': 'Parked at' });
  const panel = isOperator() ? actionPanel(s.id, { compact: true }) : null;
  const link = h(
    'a',
    { href: `#/sagas/${encodeURIComponent(s.id)}`, class: 'mono', 'data-focus': `parked-${s.id}` },
    s.id,
  );
  const el = h(
    'tr',
    { 'data-testid': 'parked-row', 'data-id': s.id },
    h('td', { 'data-label': 'Saga' }, link),
    reason,
    age,
    since,
    panel ? h('td', { 'data-label': 'Actions' }, panel.el) : null,
  );
  return {
    el,
    update(x) {
      reason.textContent = x.reason ?? (x.failure ? `${x.failure.code}: ${x.failure.message}` : '–');
      age.textContent = fmtAge(x.age_seconds);
      since.textContent = fmtTime(x.updated_at);
      panel?.update(x.allowed_actions);
    },
  };
}
