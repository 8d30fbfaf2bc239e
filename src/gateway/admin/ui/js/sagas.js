// The saga list (#/sagas): newest first, filtered, a page at a time, each status counted.
import { api } from './api.js';
import { h, keepFocus, mainView, statusBadge, table } from './dom.js';
import { fmtAge, fmtTime, orderInfo } from './format.js';
import { tick } from './poll.js';
import { listQuery, moreFilters, searchForm, statusFilters } from './saga-filters.js';
import { isCurrent, state } from './state.js';

const PAGE_SIZE = 25;

export function sagasView(token) {
  const statuses = statusFilters(state.facts.statuses, tick);
  const more = moreFilters(tick);
  const tbody = h('tbody', { 'data-testid': 'saga-rows' });
  const empty = h('p', { class: 'muted', 'data-testid': 'sagas-empty', hidden: true }, 'No sagas match.');
  const pager = pagerOf();
  mainView().replaceChildren(
    h(
      'section',
      { 'data-testid': 'sagas-view' },
      h('h1', {}, 'Sagas'),
      statuses.el,
      searchForm(tick),
      more.el,
      h(
        'div',
        { class: 'table-wrap' },
        table(
          { class: 'list', 'data-testid': 'saga-table' },
          'Sagas, newest first',
          ['Saga', 'Status', 'Definition', 'Created', 'Updated', 'Failure'],
          tbody,
        ),
      ),
      empty,
      pager.el,
    ),
  );

  let shown = '';
  return async () => {
    const page = await api('GET', `/api/sagas?${listQuery(PAGE_SIZE)}`);
    if (!isCurrent(token)) return;
    more.setSteps(Array.isArray(page.steps) ? page.steps : []);
    statuses.setCounts(page.counts);
    pager.show(page.next_cursor ?? null);
    empty.hidden = page.sagas.length > 0;
    const sig = JSON.stringify(page.sagas);
    if (sig === shown) return;
    shown = sig;
    keepFocus(tbody, () => tbody.replaceChildren(...page.sagas.map(sagaRow)));
  };
}

/** Newer and older pages: the cursors of the pages before are kept to go back. */
function pagerOf() {
  const l = state.list;
  const prev = h('button', { type: 'button', 'data-testid': 'page-prev', disabled: true }, '← Newer');
  const next = h('button', { type: 'button', 'data-testid': 'page-next', disabled: true }, 'Older →');
  const label = h('span', { 'data-testid': 'page-number', 'aria-live': 'polite' }, `Page ${l.page}`);
  let nextCursor = null;
  prev.addEventListener('click', () => {
    l.cursor = l.prev.pop() ?? null;
    l.page = Math.max(1, l.page - 1);
    tick();
  });
  next.addEventListener('click', () => {
    if (!nextCursor) return;
    l.prev.push(l.cursor);
    l.cursor = nextCursor;
    l.page += 1;
    tick();
  });
  return {
    el: h('nav', { class: 'pager', 'aria-label': 'Pages' }, prev, label, next),
    show(cursor) {
      nextCursor = cursor;
      next.disabled = !cursor;
      prev.disabled = l.page <= 1;
      label.textContent = `Page ${l.page}`;
    },
  };
}

function sagaRow(s) {
  const o = orderInfo(s);
  const cell = (label, ...content) =>
    h('td', { 'data-label': label, class: label === 'Failure' ? '' : 'nowrap' }, ...content);
  const link = h(
    'a',
    {
      href: `#/sagas/${encodeURIComponent(s.id)}`,
      class: 'mono',
      'data-focus': `saga-${s.id}`,
      'data-testid': 'saga-link',
    },
    s.id,
  );
  return h(
    'tr',
    { 'data-testid': 'saga-row', 'data-id': s.id, 'data-status': s.status, 'data-stuck': String(!!s.waiting?.stuck) },
    cell(
      'Saga',
      link,
      o.customer || o.total
        ? h('div', { class: 'sub muted' }, [o.customer, o.total].filter(Boolean).join(' · '))
        : null,
    ),
    cell(
      'Status',
      statusBadge(s.status, 'saga-status'),
      s.waiting?.stuck
        ? h(
            'span',
            {
              class: 'badge stuck',
              'data-testid': 'saga-stuck',
              title: `no progress for ${fmtAge(s.waiting.progress_age_seconds)}`,
            },
            'stuck',
          )
        : null,
      s.current_step ? h('div', { class: 'sub muted', 'data-testid': 'saga-step' }, s.current_step) : null,
    ),
    cell('Definition', `${s.definition} v${s.version}`),
    cell('Created', h('time', { datetime: s.created_at }, fmtTime(s.created_at))),
    cell('Updated', h('time', { datetime: s.updated_at }, fmtTime(s.updated_at))),
    cell('Failure', s.failure ? `${s.failure.code} (${s.failure.step})` : '–'),
  );
}
