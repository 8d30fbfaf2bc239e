// What a saga's detail shows of its log besides the waterfall: the operators' actions, the input
// and each step's result, and every event in a table.
import { faultOf } from './attempts.js';
import { h, json, table } from './dom.js';
import { fmtTime } from './format.js';
import { faultBadge } from './waterfall.js';

/** Operator actions: who, when, what, why. */
export function renderOperatorActions(el, events) {
  const ops = events.filter((e) => e.type === 'OPERATOR_ACTION');
  const item = (e) =>
    h(
      'li',
      { 'data-testid': 'operator-action', 'data-seq': e.seq, 'data-action': e.data?.action },
      h('strong', {}, e.data?.action ?? 'action'),
      ' by ',
      h('span', { 'data-testid': 'operator-actor' }, e.data?.actor ?? '?'),
      ' at ',
      h('time', { datetime: e.time }, fmtTime(e.time)),
      e.data?.note ? [' — ', h('q', { 'data-testid': 'operator-note' }, e.data.note)] : null,
      h('span', { class: 'muted mono' }, ` (${e.data?.action_id ?? ''})`),
    );
  el.replaceChildren(ops.length ? h('ul', { class: 'ops' }, ops.map(item)) : h('p', { class: 'muted' }, 'None.'));
}

/** The input and each step's result (and each compensation's, when it answered something). */
export function renderInputAndResults(el, saga, input, events) {
  const results =
    saga.results && typeof saga.results === 'object'
      ? Object.entries(saga.results).map(([step, data]) => ({ step, data }))
      : events.filter((e) => e.type === 'STEP_SUCCEEDED' && e.data !== null && e.data !== undefined);
  el.replaceChildren(
    h('h2', {}, 'Input'),
    h('div', { 'data-testid': 'detail-input' }, json(input)),
    h('h2', {}, 'Step results'),
    results.length
      ? h(
          'dl',
          { class: 'results' },
          results.map((e) => [
            h('dt', {}, e.step),
            h('dd', { 'data-testid': 'step-result', 'data-step': e.step }, json(e.data)),
          ]),
        )
      : h('p', { class: 'muted' }, 'No results yet.'),
  );
}

/** Every event of the log, in order; a failure the switchboard injected carries the fault badge. */
export function renderEvents(el, events) {
  const row = (e) => {
    const fault = faultOf(e);
    return h(
      'tr',
      {
        'data-testid': 'event-row',
        'data-seq': e.seq,
        'data-type': e.type,
        'data-fault': fault ? (fault.rule ?? '') : null,
      },
      h('td', { 'data-label': '#' }, e.seq),
      h('td', { 'data-label': 'Event', class: 'nowrap' }, e.type),
      h('td', { 'data-label': 'Step' }, e.step ?? '–'),
      h('td', { 'data-label': 'Attempt' }, e.attempt ?? '–'),
      h('td', { 'data-label': 'Time', class: 'nowrap' }, h('time', { datetime: e.time }, fmtTime(e.time))),
      h(
        'td',
        { 'data-label': 'Error', class: e.error ? 'error' : '' },
        fault ? [faultBadge(fault, 'event-fault'), ' '] : null,
        e.error ?? '–',
      ),
      h('td', { 'data-label': 'Span', class: 'mono nowrap' }, e.span_id ?? '–'),
    );
  };
  el.replaceChildren(
    table(
      { class: 'list events', 'data-testid': 'event-table' },
      'Every event of the saga log, in order',
      ['#', 'Event', 'Step', 'Attempt', 'Time', 'Error', 'Span'],
      h('tbody', {}, events.map(row)),
    ),
  );
}
