// A saga's detail (#/sagas/<id>): its facts, the operator's actions, the waterfall of its
// attempts, the operators' past actions, input and results, and every event. Live: new events
// are read after the last one seen.
import { actionPanel } from './actions.js';
import { api } from './api.js';
import { h, mainView, statusBadge } from './dom.js';
import { fmtTime, orderInfo } from './format.js';
import { isCurrent, isOperator } from './state.js';
import { renderEvents, renderInputAndResults, renderOperatorActions } from './timeline.js';
import { notRegisteredHere } from './versions.js';
import { renderWaterfall } from './waterfall.js';
import { waitingPanel } from './waiting.js';

export function detailView(id, token) {
  const shell = {
    head: h('div', { class: 'detail-head' }),
    facts: h('dl', { class: 'facts', 'data-testid': 'detail-facts' }),
    waiting: waitingPanel(id, token),
    actions: isOperator() ? actionPanel(id) : null,
    waterfall: h('div', { class: 'waterfall-wrap' }),
    ops: h('div', {}),
    io: h('div', { class: 'io' }),
    eventsSummary: h('summary', {}, 'Events'),
    events: h('div', { class: 'table-wrap' }),
  };
  const section = h(
    'section',
    { class: 'detail', 'data-testid': 'saga-detail', 'data-id': id },
    h('p', {}, h('a', { href: '#/sagas', 'data-testid': 'back-to-list' }, '← All sagas')),
    shell.head,
    shell.facts,
    shell.waiting.el,
    shell.actions?.el,
    h('h2', {}, 'Waterfall'),
    shell.waterfall,
    h('h2', {}, 'Operator actions'),
    shell.ops,
    shell.io,
    h('h2', {}, 'Events'),
    // Built once, so a reader who folded it keeps it folded.
    h('details', { open: true, 'data-testid': 'events' }, shell.eventsSummary, shell.events),
  );
  mainView().replaceChildren(section);
  const notFound = (err) =>
    section.replaceChildren(
      h('h1', {}, 'Saga not found'),
      h('p', { 'data-testid': 'not-found' }, err.message),
      h('p', {}, h('a', { href: '#/sagas' }, '← All sagas')),
    );

  let events = [];
  let shown = '';
  return async () => {
    // The new events, page by page; the saga's state comes with each page.
    let saga;
    for (let pages = 0; pages < 50; pages++) {
      const qs = new URLSearchParams({ after_seq: String(events.at(-1)?.seq ?? 0), limit: '500' });
      const t = await api('GET', `/api/sagas/${encodeURIComponent(id)}?${qs}`).catch((err) => {
        if (err.status !== 404) throw err;
        if (isCurrent(token)) notFound(err);
        return null;
      });
      if (!t || !isCurrent(token)) return;
      saga = t;
      events = events.concat(t.events ?? []);
      if (t.next_after_seq === null || t.next_after_seq === undefined) break;
    }
    // Every round: an action's answer hides the buttons until the saga's next read says what it allows.
    shell.actions?.update(saga.allowed_actions);
    // Every round too: a saga becomes stuck with time alone, and its next attempt comes due.
    await shell.waiting.refresh(saga.status);
    const sig = JSON.stringify([saga.status, saga.updated_at, events.length, saga.trace_url]);
    if (sig === shown) return;
    shown = sig;
    section.dataset.status = saga.status;
    renderDetail(shell, saga, events);
  };
}

function renderDetail(shell, saga, events) {
  const started = events.find((e) => e.type === 'SAGA_STARTED');
  // The API gives the input and each finished step's result; the log's events say the same.
  const input = saga.input !== undefined ? saga.input : (started?.data?.input ?? started?.data);
  shell.head.replaceChildren(
    h('h1', {}, 'Saga ', h('code', { 'data-testid': 'detail-id' }, saga.id)),
    statusBadge(saga.status, 'detail-status'),
  );
  renderFacts(shell.facts, saga, input, events);
  renderWaterfall(shell.waterfall, saga, events);
  renderOperatorActions(shell.ops, events);
  renderInputAndResults(shell.io, saga, input, events);
  shell.eventsSummary.textContent = `${events.length} events of the saga log, in order`;
  renderEvents(shell.events, events);
}

function renderFacts(el, saga, input, events) {
  const o = orderInfo({ ...saga, input: saga.input ?? input });
  const traceId =
    saga.trace_id ??
    events.find((e) => e.type === 'SAGA_STARTED')?.trace_id ??
    events.find((e) => e.trace_id)?.trace_id;
  const trace = !traceId
    ? '–'
    : saga.trace_url
      ? h(
          'a',
          {
            href: saga.trace_url,
            target: '_blank',
            rel: 'noopener noreferrer',
            class: 'mono',
            'data-testid': 'trace-link',
          },
          traceId,
        )
      : h('span', { class: 'mono', 'data-testid': 'trace-id' }, traceId);
  const fact = (label, testid, ...value) => [h('dt', {}, label), h('dd', { 'data-testid': testid }, ...value)];
  el.replaceChildren(
    ...fact('Definition', 'detail-definition', `${saga.definition} v${saga.version}`, notRegisteredHere(saga)),
    ...fact('Order', 'detail-order', h('span', { class: 'mono' }, o.order)),
    ...fact('Customer', 'detail-customer', o.customer ?? '–'),
    ...fact('Total', 'detail-total', o.total ?? '–'),
    ...fact('Created', 'detail-created', fmtTime(saga.created_at)),
    ...fact('Updated', 'detail-updated', fmtTime(saga.updated_at)),
    ...fact(
      'Failure',
      'detail-failure',
      saga.failure ? `${saga.failure.code} at ${saga.failure.step}: ${saga.failure.message}` : '–',
    ),
    ...fact('Trace', 'detail-trace', trace),
  );
}
