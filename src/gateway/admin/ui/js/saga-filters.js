// The saga list's filters: the status buttons (with each status's count), the id search, and the
// customer / step / creation-time filters. Each writes state.list and calls `changed()`.
import { h, setOptions } from './dom.js';
import { resetPage, state } from './state.js';

/** One button per status the server names, and "all"; `setCounts(counts)` shows the log's counts. */
export function statusFilters(statuses, changed) {
  const all = ['', ...statuses];
  const counts = Object.fromEntries(
    all.map((st) => [st, h('span', { class: 'count', 'data-testid': `count-${st || 'ALL'}` }, '–')]),
  );
  const buttons = all.map((st) =>
    h(
      'button',
      {
        type: 'button',
        class: `filter st-${(st || 'all').toLowerCase()}`,
        'data-testid': `filter-${st || 'ALL'}`,
        'aria-pressed': String(state.list.status === st),
        onclick: () => {
          state.list.status = st;
          resetPage();
          for (const [i, b] of buttons.entries()) b.setAttribute('aria-pressed', String(all[i] === st));
          changed();
        },
      },
      st ? st.toLowerCase() : 'all',
      ' ',
      counts[st],
    ),
  );
  return {
    el: h('div', { class: 'filters', role: 'group', 'aria-label': 'Filter by status' }, buttons),
    setCounts(byStatus) {
      let total = 0;
      for (const st of statuses) {
        const n = byStatus?.[st] ?? 0;
        total += n;
        counts[st].textContent = String(n);
      }
      counts[''].textContent = String(total);
    },
  };
}

/** The search by saga (= order) id: applied on Enter, or after a pause in typing. */
export function searchForm(changed) {
  const search = h('input', {
    id: 'saga-search',
    type: 'search',
    value: state.list.q,
    placeholder: 'saga or order id',
    autocomplete: 'off',
    spellcheck: 'false',
    'data-testid': 'search',
  });
  let debounce = 0;
  const apply = () => {
    clearTimeout(debounce);
    if (search.value.trim() === state.list.q) return;
    state.list.q = search.value.trim();
    resetPage();
    changed();
  };
  search.addEventListener('input', () => {
    clearTimeout(debounce);
    debounce = setTimeout(apply, 300);
  });
  return h(
    'form',
    { role: 'search', class: 'search', onsubmit: (e) => (e.preventDefault(), apply()) },
    h('label', { for: 'saga-search' }, 'Search'),
    search,
    h('button', { type: 'submit' }, 'Search'),
  );
}

/** Customer, step and creation time: applied as they change (the customer after a pause in typing). */
export function moreFilters(changed) {
  const field = (id, label, el) => h('span', { class: 'field' }, h('label', { for: id }, label), el);
  const input = (id, testid, attrs) =>
    h('input', { id, value: state.list[testid.replace('filter-', '')], 'data-testid': testid, ...attrs });
  const customer = input('saga-customer', 'filter-customer', {
    type: 'search',
    placeholder: 'customer id',
    autocomplete: 'off',
    spellcheck: 'false',
  });
  const step = h('select', { id: 'saga-step', 'data-testid': 'filter-step' });
  setOptions(step, [['', 'any step'], ...(state.list.step ? [[state.list.step, state.list.step]] : [])]);
  const from = input('saga-from', 'filter-from', { type: 'datetime-local' });
  const to = input('saga-to', 'filter-to', { type: 'datetime-local' });
  // Stuck: in flight without progress for longer than the gateway's SAGA_STUCK_AFTER.
  const stuck = h('input', {
    id: 'saga-stuck',
    type: 'checkbox',
    checked: state.list.stuck,
    'data-testid': 'filter-stuck',
  });
  let debounce = 0;
  const apply = () => {
    clearTimeout(debounce);
    const next = {
      customer: customer.value.trim(),
      step: step.value,
      from: from.value,
      to: to.value,
      stuck: stuck.checked,
    };
    if (Object.entries(next).every(([k, v]) => state.list[k] === v)) return;
    Object.assign(state.list, next);
    resetPage();
    changed();
  };
  customer.addEventListener('input', () => {
    clearTimeout(debounce);
    debounce = setTimeout(apply, 300);
  });
  for (const el of [step, from, to, stuck]) el.addEventListener('change', apply);
  const clear = () => {
    for (const el of [customer, step, from, to]) el.value = '';
    stuck.checked = false;
    apply();
  };
  const el = h(
    'form',
    { class: 'search refine', 'aria-label': 'More filters', 'data-testid': 'filters-more' },
    field('saga-customer', 'Customer', customer),
    field('saga-step', 'Step', step),
    field('saga-from', 'Created from', from),
    field('saga-to', 'to', to),
    h('span', { class: 'field' }, stuck, h('label', { for: 'saga-stuck' }, 'stuck only')),
    h('button', { type: 'submit' }, 'Apply'),
    h('button', { type: 'button', 'data-testid': 'filter-clear', onclick: clear }, 'Clear'),
  );
  el.addEventListener('submit', (e) => (e.preventDefault(), apply()));
  /** The steps the list answer names (the step filter takes only those). */
  const setSteps = (steps) => setOptions(step, [['', 'any step'], ...steps.map((s) => [s, s])]);
  return { el, setSteps };
}

/** The list's query string from state.list (datetime-local is the browser's local time: sent as an instant). */
export function listQuery(limit) {
  const l = state.list;
  const qs = new URLSearchParams({ limit: String(limit) });
  for (const k of ['status', 'q', 'customer', 'step']) if (l[k]) qs.set(k, l[k]);
  if (l.stuck) qs.set('stuck', '1');
  for (const k of ['from', 'to']) {
    const t = l[k] ? new Date(l[k]) : null;
    // "to" a minute means to its end.
    if (t && !Number.isNaN(t.getTime())) qs.set(k, new Date(t.getTime() + (k === 'to' ? 59_999 : 0)).toISOString());
  }
  if (l.cursor) qs.set('cursor', l.cursor);
  return qs;
}
