// The operator console: a single page over the admin JSON API (/api/*), served by the gateway's
// admin listener. Plain ES module, no dependencies, no build step, nothing fetched from elsewhere.
// Every value from the API reaches the page as text (textContent, attributes), never as HTML.

const POLL_MS = 1500;
const PAGE_SIZE = 25;
const STATUSES = ['RUNNING', 'COMPENSATING', 'COMPLETED', 'COMPENSATED', 'PARKED', 'RESOLVED'];
/** Where an action is allowed (the server decides; this only spares a click that would be refused). */
// The server decides (a compensate at the pivot is refused with pivot_uncertain); this only greys out what never applies.
const ALLOWED = { retry: ['PARKED'], compensate: ['RUNNING', 'PARKED'], resolve: ['PARKED'] };
const ACTION_LABEL = { retry: 'Retry', compensate: 'Compensate now', resolve: 'Resolve' };

const view = document.getElementById('view');
const banner = document.querySelector('[data-testid="banner"]');

/** @type {{name: string, role: string, via: 'session' | 'bearer' | 'loopback', faults: boolean} | null} */
let session = null;

// The session's CSRF token: the sign-in's answer is the only one that carries it (a cookie alone
// gets it from nowhere, review N2), and every request signed in by the cookie must send it, reads
// included. It is kept in this origin's localStorage: a reload and the console's other tabs find
// it, the browser never sends it by itself, and no other origin (another port of this host) can
// read it. (Not sessionStorage: a second tab would have to sign in again, and its new cookie
// would orphan the first tab's token.) Sign-out and a 401 forget it.
const CSRF_KEY = 'sagas-console.csrf';

function storedCsrf() {
  try {
    return localStorage.getItem(CSRF_KEY);
  } catch {
    return null; // storage refused (a privacy setting): the console then works for one page only
  }
}

/** The token this tab last sent (or got from its sign-in). */
let pageCsrf = null;

function keepCsrf(token) {
  pageCsrf = token;
  try {
    localStorage.setItem(CSRF_KEY, token);
  } catch {
    /* kept in the page only */
  }
}

/** Forgets this tab's token; a newer one another tab stored after signing in stays. */
function forgetCsrf() {
  try {
    if (localStorage.getItem(CSRF_KEY) === pageCsrf) localStorage.removeItem(CSRF_KEY);
  } catch {
    /* nothing stored */
  }
  pageCsrf = null;
}

// Another tab signed in or out: its cookie is this tab's too, so start again with it.
window.addEventListener('storage', (e) => {
  if (e.key === CSRF_KEY || e.key === null) boot();
});

/** The list's filter and page survive navigation to a detail and back. */
const listState = { status: '', q: '', customer: '', step: '', from: '', to: '', cursor: null, prev: [], page: 1 };
/** The view on screen: its refresh, and a token that turns stale answers away. */
let current = { token: 0, refresh: async () => {} };
let pollTimer = 0;
let polling = false;
let again = false;

// ---------------------------------------------------------------------------------------------
// DOM and formatting helpers

/**
 * h('a', {href: '#/x', 'data-testid': 't', onclick: fn}, 'text', child) — an element; strings
 * become text nodes; null/false children and attributes are skipped.
 */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = String(v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const $ = (sel, root = document) => root.querySelector(sel);

function fmtDuration(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '–';
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  return fmtAge(ms / 1000);
}

function fmtAge(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '–';
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86_400)} d ${Math.floor((s % 86_400) / 3600)} h`;
}

function fmtTime(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  const p = (n, w = 2) => String(n).padStart(w, '0');
  // Local time, sortable at a glance; the ISO instant is in the <time> element's datetime.
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

function fmtRate(x) {
  return typeof x === 'number' && Number.isFinite(x) ? x.toFixed(x < 10 ? 2 : 1) : '–';
}

function fmtCents(cents) {
  return typeof cents === 'number' && Number.isFinite(cents) ? `$${(cents / 100).toFixed(2)}` : null;
}

function statusBadge(status, testid) {
  return h('span', { class: `badge st-${String(status).toLowerCase()}`, 'data-testid': testid }, status);
}

function json(value) {
  return h('pre', { class: 'json' }, value === undefined ? '—' : JSON.stringify(value, null, 2));
}

/** A random action id: the same one again is a replay on the server, never a second action. */
function newActionId() {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return `ui-${Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('')}`;
}

function showBanner(text) {
  banner.textContent = text;
  banner.hidden = !text;
}

// ---------------------------------------------------------------------------------------------
// The API

class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
  }
}

async function api(method, path, body) {
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const csrf = storedCsrf() ?? pageCsrf;
  if (csrf) {
    headers['x-csrf-token'] = csrf;
    pageCsrf = csrf;
  }
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      credentials: 'same-origin',
      cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new ApiError(0, 'network_error', `the console cannot reach the server (${err.message})`);
  }
  let data = null;
  const text = await res.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { message: text };
    }
  }
  if (!res.ok) {
    const err = new ApiError(res.status, data?.error, data?.message);
    if (res.status === 401 && !path.startsWith('/api/session')) signedOut('Your session has ended: sign in again.');
    // The cookie without its token (storage cleared, or the cookie is another tab's newer
    // session, whose token the storage event brings): only a new sign-in gives one.
    else if (data?.error === 'csrf_rejected' && session?.via === 'session' && (storedCsrf() ?? pageCsrf) === csrf)
      signedOut('Sign in again to continue.');
    throw err;
  }
  return data;
}

// ---------------------------------------------------------------------------------------------
// Session

function isOperator() {
  return session?.role === 'operator';
}

function showChrome(on) {
  for (const sel of ['[data-testid="nav"]', '[data-testid="who"]', '[data-testid="overview"]']) $(sel).hidden = !on;
  if (on && session) {
    $('[data-testid="who-name"]').textContent = session.name;
    $('[data-testid="who-role"]').textContent = session.role;
    // No session cookie (a loopback operator when the gateway has no ADMIN_TOKENS): nothing to sign out of.
    $('[data-testid="sign-out"]').hidden = session.via !== 'session';
  }
}

function signedOut(message = '') {
  session = null;
  forgetCsrf();
  $('[data-testid="nav-faults"]').hidden = true;
  stopPolling();
  showChrome(false);
  showBanner('');
  renderSignIn(message);
}

function renderSignIn(message) {
  current = { token: current.token + 1, refresh: async () => {} };
  const input = h('input', {
    id: 'token',
    name: 'token',
    type: 'password',
    autocomplete: 'current-password',
    required: true,
    'data-testid': 'token-input',
    'aria-describedby': 'token-help',
  });
  const error = h('p', { class: 'error', role: 'alert', 'data-testid': 'sign-in-error', hidden: !message }, message);
  const button = h('button', { type: 'submit', class: 'primary', 'data-testid': 'sign-in-submit' }, 'Sign in');
  const form = h(
    'form',
    {
      class: 'card sign-in',
      'data-testid': 'sign-in-form',
      onsubmit: async (e) => {
        e.preventDefault();
        button.disabled = true;
        error.hidden = true;
        try {
          const answer = await api('POST', '/api/session', { token: input.value });
          keepCsrf(answer.csrf_token);
          session = answer;
          input.value = '';
          started();
        } catch (err) {
          error.textContent = err.status === 401 || err.status === 403 ? 'That token is not valid.' : err.message;
          error.hidden = false;
          input.focus();
        } finally {
          button.disabled = false;
        }
      },
    },
    h('h1', {}, 'Sign in'),
    h('label', { for: 'token' }, 'Admin token'),
    input,
    h(
      'p',
      { id: 'token-help', class: 'muted' },
      'A token from the gateway’s ADMIN_TOKENS. The console keeps a session, never the token.',
    ),
    error,
    button,
  );
  view.replaceChildren(h('section', { 'data-testid': 'sign-in' }, form));
  input.focus();
}

$('[data-testid="sign-out"]').addEventListener('click', async () => {
  try {
    await api('DELETE', '/api/session');
  } catch {
    /* signed out either way */
  }
  signedOut();
});

// ---------------------------------------------------------------------------------------------
// Routing and polling

function route() {
  const hash = location.hash.replace(/^#/, '') || '/sagas';
  const m = /^\/sagas\/([^/?#]+)$/.exec(hash);
  if (m) return { name: 'detail', id: decodeURIComponent(m[1]) };
  if (hash.startsWith('/parked')) return { name: 'parked' };
  if (hash.startsWith('/stock')) return { name: 'stock' };
  if (hash.startsWith('/faults')) return { name: 'faults' };
  return { name: 'sagas' };
}

function render() {
  if (!session) return;
  const r = route();
  for (const a of document.querySelectorAll('[data-nav]')) {
    const here = a.dataset.nav === (r.name === 'detail' ? 'sagas' : r.name);
    if (here) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  showBanner('');
  const token = current.token + 1;
  const views = { parked: parkedView, stock: stockView, faults: faultsView, sagas: sagasView };
  const refresh = r.name === 'detail' ? detailView(r.id, token) : views[r.name](token);
  current = { token, refresh };
  tick();
}

function stopPolling() {
  clearTimeout(pollTimer);
  pollTimer = 0;
}

/** One round: the view's data and the overview strip, then the next round in POLL_MS. */
async function tick() {
  stopPolling();
  if (!session) return;
  if (polling) {
    // A round is under way (perhaps for the view just left): run another as soon as it ends.
    again = true;
    return;
  }
  polling = true;
  const token = current.token;
  try {
    await Promise.all([current.refresh(), refreshOverview()]);
    if (token === current.token) showBanner('');
  } catch (err) {
    if (session && token === current.token) showBanner(err.message);
  } finally {
    polling = false;
  }
  if (again) {
    again = false;
    return tick();
  }
  if (session && !document.hidden) pollTimer = setTimeout(tick, POLL_MS);
}

document.addEventListener('visibilitychange', () => {
  if (!document.hidden && session) tick();
});

window.addEventListener('hashchange', () => {
  render();
  view.focus({ preventScroll: true });
});

async function refreshOverview() {
  const o = await api('GET', '/api/overview');
  $('[data-testid="ov-rate"]').textContent = fmtRate(o.sagas_per_second);
  $('[data-testid="ov-p50"]').textContent = fmtDuration(o.p50_ms);
  $('[data-testid="ov-p99"]').textContent = fmtDuration(o.p99_ms);
  $('[data-testid="ov-inflight"]').textContent = o.in_flight ?? '–';
  $('[data-testid="ov-parked"]').textContent = o.parked ?? '–';
  $('[data-testid="ov-oldest"]').textContent = o.in_flight ? fmtAge(o.oldest_in_flight_age_seconds) : '–';
}

/** Keeps keyboard focus on the "same" element (by its data-focus key) across a re-render. */
function keepFocus(root, fn) {
  const key = root.contains(document.activeElement) ? document.activeElement?.getAttribute('data-focus') : null;
  fn();
  if (key) root.querySelector(`[data-focus="${CSS.escape(key)}"]`)?.focus({ preventScroll: true });
}

// ---------------------------------------------------------------------------------------------
// Sagas (the list)

function orderInfo(s) {
  const input = s.input && typeof s.input === 'object' ? s.input : {};
  return {
    order: s.order_id ?? input.order_id ?? s.id,
    customer: s.customer_id ?? input.customer_id ?? null,
    total:
      typeof s.total === 'string' || typeof s.total === 'number'
        ? `$${s.total}`
        : fmtCents(s.total_cents ?? input.total_cents),
  };
}

function sagasView(token) {
  const counts = Object.fromEntries(
    ['', ...STATUSES].map((st) => [st, h('span', { class: 'count', 'data-testid': `count-${st || 'ALL'}` }, '–')]),
  );
  const filterButtons = ['', ...STATUSES].map((st) =>
    h(
      'button',
      {
        type: 'button',
        class: `filter st-${(st || 'all').toLowerCase()}`,
        'data-testid': `filter-${st || 'ALL'}`,
        'aria-pressed': String(listState.status === st),
        onclick: () => {
          listState.status = st;
          resetPage();
          for (const [i, b] of filterButtons.entries())
            b.setAttribute('aria-pressed', String(['', ...STATUSES][i] === st));
          tick();
        },
      },
      st ? st.toLowerCase() : 'all',
      ' ',
      counts[st],
    ),
  );
  const search = h('input', {
    id: 'saga-search',
    type: 'search',
    value: listState.q,
    placeholder: 'saga or order id',
    autocomplete: 'off',
    spellcheck: 'false',
    'data-testid': 'search',
  });
  let debounce = 0;
  const applySearch = () => {
    clearTimeout(debounce);
    if (search.value.trim() === listState.q) return;
    listState.q = search.value.trim();
    resetPage();
    tick();
  };
  search.addEventListener('input', () => {
    clearTimeout(debounce);
    debounce = setTimeout(applySearch, 300);
  });
  // Customer, step and creation time: applied as they change (the customer as one types, after a pause).
  let filterDebounce = 0;
  const field = (id, label, el) => h('span', { class: 'field' }, h('label', { for: id }, label), el);
  const customer = h('input', {
    id: 'saga-customer',
    type: 'search',
    value: listState.customer,
    placeholder: 'customer id',
    autocomplete: 'off',
    spellcheck: 'false',
    'data-testid': 'filter-customer',
  });
  const stepSelect = h(
    'select',
    { id: 'saga-step', 'data-testid': 'filter-step' },
    h('option', { value: '' }, 'any step'),
  );
  if (listState.step) stepSelect.append(h('option', { value: listState.step }, listState.step));
  stepSelect.value = listState.step;
  const from = h('input', {
    id: 'saga-from',
    type: 'datetime-local',
    value: listState.from,
    'data-testid': 'filter-from',
  });
  const to = h('input', { id: 'saga-to', type: 'datetime-local', value: listState.to, 'data-testid': 'filter-to' });
  const applyFilters = () => {
    clearTimeout(filterDebounce);
    const next = { customer: customer.value.trim(), step: stepSelect.value, from: from.value, to: to.value };
    if (Object.entries(next).every(([k, v]) => listState[k] === v)) return;
    Object.assign(listState, next);
    resetPage();
    tick();
  };
  customer.addEventListener('input', () => {
    clearTimeout(filterDebounce);
    filterDebounce = setTimeout(applyFilters, 300);
  });
  for (const el of [stepSelect, from, to]) el.addEventListener('change', applyFilters);
  const clear = h(
    'button',
    {
      type: 'button',
      'data-testid': 'filter-clear',
      onclick: () => {
        customer.value = '';
        stepSelect.value = '';
        from.value = '';
        to.value = '';
        applyFilters();
      },
    },
    'Clear',
  );
  const tbody = h('tbody', { 'data-testid': 'saga-rows' });
  const empty = h('p', { class: 'muted', 'data-testid': 'sagas-empty', hidden: true }, 'No sagas match.');
  const prev = h('button', { type: 'button', 'data-testid': 'page-prev', disabled: true }, '← Newer');
  const next = h('button', { type: 'button', 'data-testid': 'page-next', disabled: true }, 'Older →');
  const pageLabel = h('span', { 'data-testid': 'page-number', 'aria-live': 'polite' }, `Page ${listState.page}`);
  let nextCursor = null;
  prev.addEventListener('click', () => {
    listState.cursor = listState.prev.pop() ?? null;
    listState.page = Math.max(1, listState.page - 1);
    tick();
  });
  next.addEventListener('click', () => {
    if (!nextCursor) return;
    listState.prev.push(listState.cursor);
    listState.cursor = nextCursor;
    listState.page += 1;
    tick();
  });

  view.replaceChildren(
    h(
      'section',
      { 'data-testid': 'sagas-view' },
      h('h1', {}, 'Sagas'),
      h('div', { class: 'filters', role: 'group', 'aria-label': 'Filter by status' }, filterButtons),
      h(
        'form',
        { role: 'search', class: 'search', onsubmit: (e) => (e.preventDefault(), applySearch()) },
        h('label', { for: 'saga-search' }, 'Search'),
        search,
        h('button', { type: 'submit' }, 'Search'),
      ),
      h(
        'form',
        {
          class: 'search refine',
          'aria-label': 'More filters',
          'data-testid': 'filters-more',
          onsubmit: (e) => (e.preventDefault(), applyFilters()),
        },
        field('saga-customer', 'Customer', customer),
        field('saga-step', 'Step', stepSelect),
        field('saga-from', 'Created from', from),
        field('saga-to', 'to', to),
        h('button', { type: 'submit' }, 'Apply'),
        clear,
      ),
      h(
        'div',
        { class: 'table-wrap' },
        h(
          'table',
          { class: 'list', 'data-testid': 'saga-table' },
          h('caption', { class: 'sr-only' }, 'Sagas, newest first'),
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              ['Saga', 'Status', 'Definition', 'Created', 'Updated', 'Failure'].map((t) =>
                h('th', { scope: 'col' }, t),
              ),
            ),
          ),
          tbody,
        ),
      ),
      empty,
      h('nav', { class: 'pager', 'aria-label': 'Pages' }, prev, pageLabel, next),
    ),
  );

  let shown = '';
  return async () => {
    const qs = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (listState.status) qs.set('status', listState.status);
    if (listState.q) qs.set('q', listState.q);
    if (listState.customer) qs.set('customer', listState.customer);
    if (listState.step) qs.set('step', listState.step);
    // datetime-local is the browser's local time: sent as an instant.
    for (const k of ['from', 'to']) {
      const t = listState[k] ? new Date(listState[k]) : null;
      // "to" a minute means to its end.
      if (t && !Number.isNaN(t.getTime())) qs.set(k, new Date(t.getTime() + (k === 'to' ? 59_999 : 0)).toISOString());
    }
    if (listState.cursor) qs.set('cursor', listState.cursor);
    const page = await api('GET', `/api/sagas?${qs}`);
    if (token !== current.token) return;
    const steps = Array.isArray(page.steps) ? page.steps : [];
    if (
      stepSelect.options.length !== steps.length + 1 ||
      steps.some((st, i) => stepSelect.options[i + 1]?.value !== st)
    ) {
      const chosen = stepSelect.value;
      stepSelect.replaceChildren(
        h('option', { value: '' }, 'any step'),
        ...steps.map((st) => h('option', { value: st }, st)),
      );
      stepSelect.value = steps.includes(chosen) ? chosen : '';
    }
    let total = 0;
    for (const st of STATUSES) {
      const n = page.counts?.[st] ?? 0;
      total += n;
      counts[st].textContent = String(n);
    }
    counts[''].textContent = String(total);
    nextCursor = page.next_cursor ?? null;
    next.disabled = !nextCursor;
    prev.disabled = listState.page <= 1;
    pageLabel.textContent = `Page ${listState.page}`;
    empty.hidden = page.sagas.length > 0;
    const sig = JSON.stringify(page.sagas);
    if (sig === shown) return;
    shown = sig;
    keepFocus(tbody, () => tbody.replaceChildren(...page.sagas.map(sagaRow)));
  };
}

function resetPage() {
  listState.cursor = null;
  listState.prev = [];
  listState.page = 1;
}

function sagaRow(s) {
  const o = orderInfo(s);
  const cell = (label, ...content) =>
    h('td', { 'data-label': label, class: label === 'Failure' ? '' : 'nowrap' }, ...content);
  return h(
    'tr',
    { 'data-testid': 'saga-row', 'data-id': s.id, 'data-status': s.status },
    cell(
      'Saga',
      h(
        'a',
        {
          href: `#/sagas/${encodeURIComponent(s.id)}`,
          class: 'mono',
          'data-focus': `saga-${s.id}`,
          'data-testid': 'saga-link',
        },
        s.id,
      ),
      o.customer || o.total
        ? h('div', { class: 'sub muted' }, [o.customer, o.total].filter(Boolean).join(' · '))
        : null,
    ),
    cell(
      'Status',
      statusBadge(s.status, 'saga-status'),
      s.current_step ? h('div', { class: 'sub muted', 'data-testid': 'saga-step' }, s.current_step) : null,
    ),
    cell('Definition', `${s.definition} v${s.version}`),
    cell('Created', h('time', { datetime: s.created_at }, fmtTime(s.created_at))),
    cell('Updated', h('time', { datetime: s.updated_at }, fmtTime(s.updated_at))),
    cell('Failure', s.failure ? `${s.failure.code} (${s.failure.step})` : '–'),
  );
}

// ---------------------------------------------------------------------------------------------
// Saga detail

/** `<saga id>:<step>` for an action, `<saga id>:<step>:undo` for a compensation (src/saga/transitions.ts). */
function idempotencyKey(sagaId, step, phase) {
  return phase === 'action' ? `${sagaId}:${step}` : `${sagaId}:${step}:undo`;
}

const OUTCOME = {
  STEP_SUCCEEDED: ['action', 'succeeded'],
  STEP_FAILED: ['action', 'failed'],
  COMPENSATION_SUCCEEDED: ['compensation', 'succeeded'],
  COMPENSATION_FAILED: ['compensation', 'failed'],
};

const FAULT_RULE = /fault injected by rule ([A-Za-z0-9_.-]+)/;

/**
 * An attempt's failure injected by the fault switchboard (docs/faults-and-chaos.md): a STEP_FAILED
 * or COMPENSATION_FAILED whose error names the rule (`fault injected by rule <id>: …`) or whose
 * code is `fault_injected`. `{rule}` (null when the text does not name it), or null for any other
 * event (the saga's own end carries the failure too, but it is not an attempt).
 */
export function faultOf(e) {
  if (e?.type !== 'STEP_FAILED' && e?.type !== 'COMPENSATION_FAILED') return null;
  const text = typeof e?.error === 'string' ? e.error : '';
  const code = e?.data && typeof e.data === 'object' ? e.data.code : undefined;
  if (code !== 'fault_injected' && !/fault[ _]injected/.test(text)) return null;
  const m = FAULT_RULE.exec(text);
  return { rule: m ? m[1] : null };
}

function faultBadge(fault, testid) {
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

/**
 * One bar per attempt: each STEP_STARTED / COMPENSATION_STARTED opens one, the next outcome of
 * the same step and phase closes it. An attempt never closed was cut short by a crash (a later
 * attempt or a resume followed) or is still running.
 */
export function attemptsOf(events) {
  const bars = [];
  const open = new Map();
  for (const e of events) {
    if (e.type === 'STEP_STARTED' || e.type === 'COMPENSATION_STARTED') {
      const phase = e.type === 'STEP_STARTED' ? 'action' : 'compensation';
      const key = `${phase}:${e.step}`;
      const stale = open.get(key);
      if (stale) stale.outcome = 'interrupted';
      const bar = {
        seq: e.seq,
        step: e.step,
        display: e.display_name,
        phase,
        attempt: e.attempt,
        start: Date.parse(e.time),
        end: null,
        outcome: 'running',
        error: null,
        retryable: null,
        result: undefined,
        fault: null,
      };
      bars.push(bar);
      open.set(key, bar);
    } else if (OUTCOME[e.type]) {
      const [phase, outcome] = OUTCOME[e.type];
      const bar = open.get(`${phase}:${e.step}`);
      if (!bar) continue; // e.g. a deadline's STEP_FAILED with no attempt in flight
      open.delete(`${phase}:${e.step}`);
      bar.end = Date.parse(e.time);
      bar.outcome = outcome === 'failed' && e.retryable ? 'failed-retryable' : outcome;
      bar.error = e.error ?? null;
      bar.fault = faultOf(e);
      bar.retryable = e.retryable ?? null;
      bar.result = e.data;
    } else if (e.type === 'SAGA_RESUMED') {
      for (const bar of open.values()) bar.outcome = 'interrupted';
      open.clear();
    }
  }
  return bars;
}

function detailView(id, token) {
  const shell = {
    head: h('div', { class: 'detail-head' }),
    facts: h('dl', { class: 'facts', 'data-testid': 'detail-facts' }),
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
    shell.actions?.el,
    h('h2', {}, 'Waterfall'),
    shell.waterfall,
    h('h2', {}, 'Operator actions'),
    shell.ops,
    shell.io,
    h('h2', {}, 'Events'),
    h('details', { open: true, 'data-testid': 'events' }, shell.eventsSummary, shell.events),
  );
  view.replaceChildren(section);

  let events = [];
  let afterSeq = 0;
  let shown = '';
  return async () => {
    // Read the new events page by page; the summary comes with each page.
    let saga;
    for (let pages = 0; pages < 50; pages++) {
      const qs = new URLSearchParams({ after_seq: String(afterSeq), limit: '500' });
      const t = await api('GET', `/api/sagas/${encodeURIComponent(id)}?${qs}`).catch((err) => {
        if (err.status === 404) {
          if (token === current.token)
            section.replaceChildren(
              h('h1', {}, 'Saga not found'),
              h('p', { 'data-testid': 'not-found' }, err.message),
              h('p', {}, h('a', { href: '#/sagas' }, '← All sagas')),
            );
          return null;
        }
        throw err;
      });
      if (!t || token !== current.token) return;
      saga = t;
      events = events.concat(t.events ?? []);
      if (t.events?.length) afterSeq = t.events.at(-1).seq;
      if (t.next_after_seq === null || t.next_after_seq === undefined) break;
    }
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
  const o = orderInfo({ ...saga, input: saga.input ?? input });
  const traceId = started?.trace_id ?? events.find((e) => e.trace_id)?.trace_id ?? null;

  shell.head.replaceChildren(
    h('h1', {}, 'Saga ', h('code', { 'data-testid': 'detail-id' }, saga.id)),
    statusBadge(saga.status, 'detail-status'),
  );

  const fact = (label, testid, ...value) => [h('dt', {}, label), h('dd', { 'data-testid': testid }, ...value)];
  shell.facts.replaceChildren(
    ...fact('Definition', 'detail-definition', `${saga.definition} v${saga.version}`),
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
    ...fact(
      'Trace',
      'detail-trace',
      traceId
        ? saga.trace_url
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
          : h('span', { class: 'mono', 'data-testid': 'trace-id' }, traceId)
        : '–',
    ),
  );

  shell.actions?.update(saga.status);

  // Waterfall: offsets from the saga's start, scaled to its span (up to now while it runs).
  const bars = attemptsOf(events);
  const t0 = Date.parse(started?.time ?? saga.created_at);
  const lastAt = events.length ? Date.parse(events.at(-1).time) : t0;
  const terminal = ['COMPLETED', 'COMPENSATED', 'PARKED', 'RESOLVED'].includes(saga.status);
  const tEnd = Math.max(terminal ? lastAt : Date.now(), t0 + 1);
  const span = tEnd - t0;
  const rows = bars.map((b) => {
    const end = b.end ?? (b.outcome === 'running' ? tEnd : b.start);
    const left = ((b.start - t0) / span) * 100;
    const width = Math.max(((end - b.start) / span) * 100, 0.4);
    const bar = h('span', { class: `bar ${b.phase} ${b.outcome}`, 'aria-hidden': 'true' });
    bar.style.left = `${Math.min(left, 99.6)}%`;
    bar.style.width = `${Math.min(width, 100 - Math.min(left, 99.6))}%`;

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
        h('span', { class: `wf-phase ${b.phase}` }, b.phase === 'action' ? 'action' : 'compensation'),
        h('span', { class: 'wf-attempt' }, `attempt ${b.attempt}`),
        b.fault ? faultBadge(b.fault, 'wf-fault') : null,
      ),
      h('div', { class: 'wf-track' }, bar),
      h(
        'div',
        { class: 'wf-meta' },
        h('span', { 'data-testid': 'wf-offset' }, `+${fmtDuration(b.start - t0)}`),
        h(
          'span',
          { 'data-testid': 'wf-duration' },
          b.end !== null
            ? fmtDuration(b.end - b.start)
            : b.outcome === 'running'
              ? 'running…'
              : 'no outcome (interrupted)',
        ),
        h('span', { class: `outcome ${b.outcome}`, 'data-testid': 'wf-outcome' }, b.outcome.replace('-', ', ')),
        h(
          'span',
          { class: 'mono key', title: 'idempotency key', 'data-testid': 'wf-key' },
          idempotencyKey(saga.id, b.step, b.phase),
        ),
        b.error ? h('span', { class: 'error', 'data-testid': 'wf-error' }, b.error) : null,
      ),
    );
  });
  shell.waterfall.replaceChildren(
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

  // Operator actions: who, when, what, why.
  const ops = events.filter((e) => e.type === 'OPERATOR_ACTION');
  shell.ops.replaceChildren(
    ops.length
      ? h(
          'ul',
          { class: 'ops' },
          ops.map((e) =>
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
            ),
          ),
        )
      : h('p', { class: 'muted' }, 'None.'),
  );

  // Input and each step's result (and each compensation's, when it answered something).
  const results =
    saga.results && typeof saga.results === 'object'
      ? Object.entries(saga.results).map(([step, data]) => ({ step, data, type: 'STEP_SUCCEEDED' }))
      : events.filter((e) => e.type === 'STEP_SUCCEEDED' && e.data !== null && e.data !== undefined);
  shell.io.replaceChildren(
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

  // The events table sits in a <details> built once, so a reader who folded it keeps it folded.
  shell.eventsSummary.textContent = `${events.length} events of the saga log, in order`;
  shell.events.replaceChildren(
    h(
      'table',
      { class: 'list events', 'data-testid': 'event-table' },
      h('caption', { class: 'sr-only' }, 'Every event of the saga log, in order'),
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ['#', 'Event', 'Step', 'Attempt', 'Time', 'Error', 'Span'].map((t) => h('th', { scope: 'col' }, t)),
        ),
      ),
      h(
        'tbody',
        {},
        events.map((e) => {
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
        }),
      ),
    ),
  );
}

/**
 * The operator's buttons and note. Built once per detail view so that a note being typed and
 * the keyboard focus survive the live refresh; only the buttons' state follows the saga.
 */
function actionPanel(id, { compact = false } = {}) {
  const noteId = `note-${id}`;
  const note = h(compact ? 'input' : 'textarea', {
    id: noteId,
    rows: compact ? null : 2,
    maxlength: 1000,
    'data-testid': 'action-note',
    placeholder: compact ? 'note (required to resolve)' : null,
  });
  const message = h('p', {
    class: 'action-message',
    role: 'status',
    'aria-live': 'polite',
    'data-testid': 'action-message',
  });
  let status = null;
  let busy = false;
  const buttons = {};
  const sync = () => {
    for (const [action, b] of Object.entries(buttons)) b.disabled = busy || !ALLOWED[action].includes(status);
  };
  const act = async (action) => {
    busy = true;
    sync();
    message.className = 'action-message';
    message.textContent = `${ACTION_LABEL[action]}…`;
    try {
      const body = { action, action_id: newActionId() };
      if (note.value.trim()) body.note = note.value.trim();
      const r = await api('POST', `/api/sagas/${encodeURIComponent(id)}/actions`, body);
      message.textContent = `${action} recorded${r?.replayed ? ' (replayed)' : ''}; the saga is ${r?.saga?.status ?? 'updated'}.`;
      message.classList.add('ok');
      note.value = '';
      if (r?.saga?.status) status = r.saga.status;
    } catch (err) {
      message.textContent = `${action} refused: ${err.message}${err.code ? ` (${err.code})` : ''}`;
      message.classList.add('error');
    } finally {
      busy = false;
      sync();
      tick();
    }
  };
  const actions = compact ? ['retry', 'resolve'] : ['retry', 'compensate', 'resolve'];
  for (const action of actions) {
    buttons[action] = h(
      'button',
      {
        type: 'button',
        class: action === 'resolve' ? '' : 'primary',
        'data-testid': `action-${action}`,
        'data-focus': `action-${action}-${id}`,
        disabled: true,
        onclick: () => act(action),
      },
      ACTION_LABEL[action],
    );
  }
  const el = h(
    'div',
    { class: compact ? 'actions compact' : 'card actions', 'data-testid': 'actions' },
    compact ? null : h('h2', {}, 'Actions'),
    h(
      'label',
      { for: noteId, class: compact ? 'sr-only' : '' },
      compact ? `Note for ${id}` : 'Note (required to resolve; recorded with the action)',
    ),
    note,
    h('div', { class: 'buttons' }, Object.values(buttons)),
    message,
    compact
      ? null
      : h(
          'p',
          { class: 'muted' },
          'Retry: resume a parked saga with a fresh attempt budget. Compensate now: stop going forward and undo (a running saga before its pivot, or a parked one that has not passed it; at the pivot, its fence settles it first). Resolve: close a parked saga repaired by hand.',
        ),
  );
  return {
    el,
    update(s) {
      status = s;
      sync();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// PARKED queue

function parkedView(token) {
  const tbody = h('tbody', { 'data-testid': 'parked-rows' });
  const empty = h('p', { class: 'muted', 'data-testid': 'parked-empty', hidden: true }, 'Nothing is parked.');
  view.replaceChildren(
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
        h(
          'table',
          { class: 'list', 'data-testid': 'parked-table' },
          h('caption', { class: 'sr-only' }, 'Parked sagas, oldest first'),
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              ['Saga', 'Reason', 'Age', 'Parked at', isOperator() ? 'Actions' : null]
                .filter(Boolean)
                .map((t) => h('th', { scope: 'col' }, t)),
            ),
          ),
          tbody,
        ),
      ),
      empty,
    ),
  );
  /** Rows are kept by saga id, so a note being typed survives the refresh. */
  const rows = new Map();
  return async () => {
    const body = await api('GET', `/api/parked?limit=100`);
    if (token !== current.token) return;
    const list = Array.isArray(body) ? body : (body.sagas ?? body.parked ?? body.items ?? []);
    const seen = new Set();
    const ordered = list.map((s) => {
      seen.add(s.id);
      let row = rows.get(s.id);
      if (!row) {
        row = parkedRow(s);
        rows.set(s.id, row);
      }
      row.update(s);
      return row.el;
    });
    for (const id of rows.keys()) if (!seen.has(id)) rows.delete(id);
    const same = ordered.length === tbody.children.length && ordered.every((el, i) => tbody.children[i] === el);
    if (!same) keepFocus(tbody, () => tbody.replaceChildren(...ordered));
    empty.hidden = list.length > 0;
  };
}

function parkedRow(s) {
  const reason = h('td', { 'data-label': 'Reason', 'data-testid': 'parked-reason' });
  const age = h('td', { 'data-label': 'Age', 'data-testid': 'parked-age' });
  const since = h('td', { 'data-label': 'Parked at' });
  const panel = isOperator() ? actionPanel(s.id, { compact: true }) : null;
  const el = h(
    'tr',
    { 'data-testid': 'parked-row', 'data-id': s.id },
    h(
      'td',
      { 'data-label': 'Saga' },
      h('a', { href: `#/sagas/${encodeURIComponent(s.id)}`, class: 'mono', 'data-focus': `parked-${s.id}` }, s.id),
    ),
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
      panel?.update(x.status ?? 'PARKED');
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Stock

function stockView(token) {
  const tbody = h('tbody', { 'data-testid': 'stock-rows' });
  view.replaceChildren(
    h(
      'section',
      { 'data-testid': 'stock-view' },
      h('h1', {}, 'Stock'),
      h(
        'div',
        { class: 'table-wrap' },
        h(
          'table',
          { class: 'list numeric', 'data-testid': 'stock-table' },
          h('caption', { class: 'sr-only' }, 'Stock per product'),
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              ['Product', 'Available', 'Reserved', 'Sold', 'Price'].map((t) => h('th', { scope: 'col' }, t)),
            ),
          ),
          tbody,
        ),
      ),
    ),
  );
  let shown = '';
  return async () => {
    const body = await api('GET', '/api/stock');
    if (token !== current.token) return;
    const sig = JSON.stringify(body.products);
    if (sig === shown) return;
    shown = sig;
    tbody.replaceChildren(
      ...body.products.map((p) =>
        h(
          'tr',
          { 'data-testid': 'stock-row', 'data-product': p.product_id },
          h('td', { 'data-label': 'Product', class: 'mono' }, p.product_id),
          h('td', { 'data-label': 'Available', 'data-testid': 'stock-available' }, p.available),
          h('td', { 'data-label': 'Reserved', 'data-testid': 'stock-reserved' }, p.reserved),
          h('td', { 'data-label': 'Sold', 'data-testid': 'stock-sold' }, p.sold ?? '–'),
          h('td', { 'data-label': 'Price' }, typeof p.price === 'number' ? `$${p.price.toFixed(2)}` : '–'),
        ),
      ),
    );
  };
}

// ---------------------------------------------------------------------------------------------
// Faults (the switchboard; docs/faults-and-chaos.md)

const FAULT_KINDS = ['error', 'latency', 'uncertain', 'after_effect', 'crash'];
const FAULT_PARTICIPANTS = ['order', 'inventory', 'payment'];
const FAULT_METHODS = [
  'CreateOrder',
  'CancelOrder',
  'ConfirmOrder',
  'Reserve',
  'Release',
  'Commit',
  'Charge',
  'Refund',
];
const CRASH_POINTS = ['before_intent', 'after_intent', 'before_outcome', 'after_outcome'];

/** Shows the Faults link when the gateway has a switchboard (the session says so). */
function probeFaults() {
  $('[data-testid="nav-faults"]').hidden = !session?.faults;
}

function fmtTarget(t = {}) {
  const parts = [];
  if (t.step) parts.push(`step ${t.step}`);
  if (t.participant || t.method) parts.push([t.participant, t.method].filter(Boolean).join('.'));
  return parts.length ? parts.join(' · ') : 'every step';
}

function fmtFaultParams(r) {
  if (r.kind === 'latency') return `${r.latency_ms ?? 0} ms${r.jitter_ms ? ` + up to ${r.jitter_ms} ms` : ''}`;
  if (r.kind === 'crash')
    return r.crash_point
      ? `at ${r.crash_point}`
      : r.target?.participant || r.target?.method
        ? 'before the handler'
        : 'at before_outcome';
  return '–';
}

function fmtLimit(l) {
  if (!l || (l.count === undefined && l.until === undefined)) return 'none';
  return [l.count !== undefined ? `${l.count}×` : null, l.until ? `until ${fmtTime(l.until)}` : null]
    .filter(Boolean)
    .join(', ');
}

/** A rule as PUT takes it back: everything but its count. */
function planRule(r) {
  const { fired: _fired, ...rest } = r;
  return rest;
}

function faultsView(token) {
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
  const off = h(
    'div',
    { class: 'card notice', role: 'status', 'data-testid': 'faults-off', hidden: true },
    h('strong', {}, 'The fault switchboard is off.'),
    ' Start the gateway with ',
    h('code', {}, 'FAULTS_ENABLED=1'),
    ' (and the participants too, for faults that act there) to rehearse failures from here.',
  );
  const on = h('div', { 'data-testid': 'faults-on', hidden: true });
  /** The plan as last read: what a PUT adds to or removes from. */
  let rules = [];
  let busy = false;

  const say = (text, kind) => {
    message.className = `action-message${kind ? ` ${kind}` : ''}`;
    message.textContent = text;
  };

  const put = async (next, done) => {
    busy = true;
    try {
      const body = await api('PUT', '/api/faults', { rules: next.map(planRule) });
      rules = body.rules;
      if (token === current.token) show(body);
      say(done, 'ok');
      return true;
    } finally {
      busy = false;
    }
  };

  const toggle = async (id, enabled) => {
    busy = true;
    say(`Switching ${id} ${enabled ? 'on' : 'off'}…`);
    try {
      const r = await api('POST', `/api/faults/${encodeURIComponent(id)}`, { enabled });
      say(`Rule ${r.rule.id} is ${r.rule.enabled ? 'on' : 'off'}.`, 'ok');
    } catch (err) {
      say(`Not switched: ${err.message}${err.code ? ` (${err.code})` : ''}`, 'error');
    } finally {
      busy = false;
      tick();
    }
  };

  const remove = async (id) => {
    say(`Removing ${id}…`);
    try {
      await put(
        rules.filter((r) => r.id !== id),
        `Rule ${id} removed.`,
      );
    } catch (err) {
      say(`Not removed: ${err.message}${err.code ? ` (${err.code})` : ''}`, 'error');
    } finally {
      tick();
    }
  };

  /** Rows are kept by rule id, so the focus on a toggle survives the refresh. */
  const rows = new Map();
  const rowOf = (r) => {
    const cells = {};
    const cell = (label, testid, cls) =>
      (cells[testid] = h('td', { 'data-label': label, 'data-testid': testid, class: cls }));
    const toggleButton = operator
      ? h('button', {
          type: 'button',
          role: 'switch',
          class: 'toggle',
          'data-testid': 'fault-toggle',
          'data-focus': `fault-toggle-${r.id}`,
          'aria-label': `Rule ${r.id}`,
          onclick: (e) => toggle(r.id, e.currentTarget.getAttribute('aria-checked') !== 'true'),
        })
      : null;
    const state = operator ? null : h('span', { class: 'badge', 'data-testid': 'fault-state' });
    const removeButton = operator
      ? h(
          'button',
          {
            type: 'button',
            'data-testid': 'fault-remove',
            'data-focus': `fault-remove-${r.id}`,
            'aria-label': `Remove rule ${r.id}`,
            onclick: () => remove(r.id),
          },
          'Remove',
        )
      : null;
    const el = h(
      'tr',
      { 'data-testid': 'fault-row', 'data-id': r.id },
      h('td', { 'data-label': 'On' }, toggleButton ?? state),
      h('td', { 'data-label': 'Rule', class: 'mono', 'data-testid': 'fault-id' }, r.id),
      cell('Target', 'fault-target'),
      cell('Phase', 'fault-phase', 'nowrap'),
      cell('Kind', 'fault-kind', 'nowrap'),
      cell('Parameters', 'fault-params'),
      cell('Probability', 'fault-probability', 'nowrap'),
      cell('Limit', 'fault-limit'),
      cell('Fired', 'fault-fired', 'nowrap'),
      operator ? h('td', { 'data-label': 'Remove' }, removeButton) : null,
    );
    return {
      el,
      update(x) {
        el.dataset.enabled = String(x.enabled);
        if (toggleButton) {
          toggleButton.setAttribute('aria-checked', String(x.enabled));
          toggleButton.textContent = x.enabled ? 'On' : 'Off';
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
      },
    };
  };

  const show = (body) => {
    off.hidden = true;
    on.hidden = false;
    const seen = new Set();
    const ordered = body.rules.map((r) => {
      seen.add(r.id);
      let row = rows.get(r.id);
      if (!row) {
        row = rowOf(r);
        rows.set(r.id, row);
      }
      row.update(r);
      return row.el;
    });
    for (const id of rows.keys()) if (!seen.has(id)) rows.delete(id);
    const same = ordered.length === tbody.children.length && ordered.every((el, i) => tbody.children[i] === el);
    if (!same) keepFocus(tbody, () => tbody.replaceChildren(...ordered));
    empty.hidden = body.rules.length > 0;
  };

  const form = operator
    ? faultForm((rule) =>
        put([...rules, rule], `Rule ${rule.id} added; the plan was replaced (every count restarted at 0).`),
      )
    : null;

  append(on, [
    h(
      'div',
      { class: 'table-wrap' },
      h(
        'table',
        { class: 'list faults', 'data-testid': 'fault-table' },
        h('caption', { class: 'sr-only' }, 'Fault rules, in plan order (the first that matches an attempt fires)'),
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            [
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
            ]
              .filter(Boolean)
              .map((t) => h('th', { scope: 'col' }, t)),
          ),
        ),
        tbody,
      ),
    ),
    empty,
    message,
    operator
      ? form.el
      : h(
          'p',
          { class: 'muted', 'data-testid': 'faults-read-only' },
          'You are a viewer: only an operator changes the plan.',
        ),
  ]);
  view.replaceChildren(
    h(
      'section',
      { 'data-testid': 'faults-view' },
      h('h1', {}, 'Faults'),
      h(
        'p',
        { class: 'muted' },
        'The fault switchboard: the first rule, in plan order, that is on, targets an attempt, is within its limit and passes its probability draw fires. Fired counts since the plan was last replaced.',
      ),
      off,
      on,
    ),
  );
  if (form) form.loadSteps();

  return async () => {
    if (busy) return;
    if (!session?.faults) {
      // Off (the session says so): no request whose 404 the browser would log as an error.
      off.hidden = false;
      on.hidden = true;
      return;
    }
    let body;
    try {
      body = await api('GET', '/api/faults');
    } catch (err) {
      if (err.status !== 404) throw err;
      if (token !== current.token) return;
      $('[data-testid="nav-faults"]').hidden = true;
      off.hidden = false;
      on.hidden = true;
      return;
    }
    if (token !== current.token || busy) return;
    $('[data-testid="nav-faults"]').hidden = false;
    rules = body.rules;
    show(body);
  };
}

/** The operator's form to add a rule; `add(rule)` PUTs the plan with it (and throws the server's refusal). */
function faultForm(add) {
  const field = (id, label, el, hint) =>
    h(
      'div',
      { class: 'field', 'data-field': id },
      h('label', { for: id }, label),
      el,
      hint ? h('span', { class: 'muted hint' }, hint) : null,
    );
  const select = (id, options, testid) =>
    h(
      'select',
      { id, name: id, 'data-testid': testid },
      options.map(([v, t]) => h('option', { value: v }, t)),
    );
  const input = (id, attrs) => h('input', { id, name: id, autocomplete: 'off', spellcheck: 'false', ...attrs });

  const id = input('fault-new-id', {
    required: true,
    maxlength: 64,
    pattern: '[A-Za-z0-9_.\\-]+',
    placeholder: 'e.g. refuse-reserve',
    'data-testid': 'fault-new-id',
  });
  const kind = select(
    'fault-new-kind',
    FAULT_KINDS.map((k) => [k, k]),
    'fault-new-kind',
  );
  const step = select('fault-new-step', [['', 'any step']], 'fault-new-step');
  const participant = select(
    'fault-new-participant',
    [['', 'any (in the gateway)'], ...FAULT_PARTICIPANTS.map((p) => [p, p])],
    'fault-new-participant',
  );
  const method = input('fault-new-method', {
    list: 'fault-methods',
    maxlength: 64,
    placeholder: 'e.g. Charge',
    'data-testid': 'fault-new-method',
  });
  const methods = h(
    'datalist',
    { id: 'fault-methods' },
    FAULT_METHODS.map((m) => h('option', { value: m })),
  );
  const phase = select(
    'fault-new-phase',
    [
      ['', 'both'],
      ['action', 'action'],
      ['compensation', 'compensation'],
    ],
    'fault-new-phase',
  );
  const latency = input('fault-new-latency', {
    type: 'number',
    min: 0,
    step: 1,
    inputmode: 'numeric',
    'data-testid': 'fault-new-latency',
  });
  const jitter = input('fault-new-jitter', {
    type: 'number',
    min: 0,
    step: 1,
    inputmode: 'numeric',
    'data-testid': 'fault-new-jitter',
  });
  const crashPoint = select(
    'fault-new-crash-point',
    [['', 'default'], ...CRASH_POINTS.map((p) => [p, p])],
    'fault-new-crash-point',
  );
  const probability = input('fault-new-probability', {
    type: 'number',
    min: 0,
    max: 1,
    step: 'any',
    value: '1',
    inputmode: 'decimal',
    'data-testid': 'fault-new-probability',
  });
  const count = input('fault-new-count', {
    type: 'number',
    min: 1,
    step: 1,
    inputmode: 'numeric',
    'data-testid': 'fault-new-count',
  });
  const until = input('fault-new-until', { type: 'datetime-local', 'data-testid': 'fault-new-until' });
  const enabled = h('input', {
    id: 'fault-new-enabled',
    type: 'checkbox',
    checked: true,
    'data-testid': 'fault-new-enabled',
  });
  const error = h('p', { class: 'error', role: 'alert', 'data-testid': 'fault-form-error', hidden: true });
  const submit = h('button', { type: 'submit', class: 'primary', 'data-testid': 'fault-add' }, 'Add rule');

  const latencyFields = [
    field('fault-new-latency', 'Latency (ms)', latency),
    field('fault-new-jitter', 'Jitter (ms)', jitter),
  ];
  const crashField = field('fault-new-crash-point', 'Crash point', crashPoint, 'gateway crashes only');
  const syncKind = () => {
    for (const f of latencyFields) f.hidden = kind.value !== 'latency';
    crashField.hidden = kind.value !== 'crash';
  };
  kind.addEventListener('change', syncKind);
  syncKind();

  /** A number field's value: a number, or the text as typed when it is not one (the server names it). */
  const num = (el) => {
    const v = el.value.trim();
    if (v === '') return el.validity?.badInput ? 'not a number' : undefined;
    const n = Number(v);
    return Number.isFinite(n) ? n : v;
  };

  const el = h(
    'form',
    {
      class: 'card fault-form',
      'data-testid': 'fault-form',
      'aria-labelledby': 'fault-form-title',
      novalidate: true,
      onsubmit: async (e) => {
        e.preventDefault();
        const rule = { id: id.value.trim(), kind: kind.value, enabled: enabled.checked, target: {} };
        if (step.value) rule.target.step = step.value;
        if (participant.value) rule.target.participant = participant.value;
        if (method.value.trim()) rule.target.method = method.value.trim();
        if (phase.value) rule.phase = phase.value;
        if (kind.value === 'latency') {
          const l = num(latency);
          const j = num(jitter);
          if (l !== undefined) rule.latency_ms = l;
          if (j !== undefined) rule.jitter_ms = j;
        }
        if (kind.value === 'crash' && crashPoint.value) rule.crash_point = crashPoint.value;
        const p = num(probability);
        if (p !== undefined) rule.probability = p;
        const c = num(count);
        const u = until.value ? new Date(until.value) : null;
        if (c !== undefined || u) rule.limit = {};
        if (c !== undefined) rule.limit.count = c;
        if (u) rule.limit.until = Number.isNaN(u.getTime()) ? until.value : u.toISOString();
        submit.disabled = true;
        error.hidden = true;
        try {
          await add(rule);
          id.value = '';
          id.focus();
        } catch (err) {
          error.textContent = `${err.message}${err.code ? ` (${err.code})` : ''}`;
          error.hidden = false;
        } finally {
          submit.disabled = false;
        }
      },
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
      field('fault-new-id', 'Rule id', id),
      field('fault-new-kind', 'Kind', kind),
      field('fault-new-step', 'Step', step),
      field('fault-new-participant', 'Participant', participant),
      field('fault-new-method', 'Method', h('span', {}, method, methods)),
      field('fault-new-phase', 'Phase', phase),
      latencyFields,
      crashField,
      field('fault-new-probability', 'Probability (0–1)', probability),
      field('fault-new-count', 'Limit: times', count),
      field('fault-new-until', 'Limit: until', until),
      h('div', { class: 'field check' }, enabled, h('label', { for: 'fault-new-enabled' }, 'On at once')),
    ),
    error,
    h('div', { class: 'buttons' }, submit),
  );
  return {
    el,
    /** The saga steps a rule may name, as the saga list reports them. */
    async loadSteps() {
      try {
        const page = await api('GET', '/api/sagas?limit=1');
        const chosen = step.value;
        const steps = Array.isArray(page.steps) ? page.steps : [];
        step.replaceChildren(h('option', { value: '' }, 'any step'), ...steps.map((s) => h('option', { value: s }, s)));
        step.value = steps.includes(chosen) ? chosen : '';
      } catch {
        /* the list stays "any step"; the refresh shows the problem */
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Start

function started() {
  showChrome(true);
  render();
  probeFaults();
}

async function boot() {
  try {
    session = await api('GET', '/api/session');
  } catch (err) {
    if (err.status === 401) return signedOut();
    if (err.code === 'csrf_rejected') return signedOut('Sign in again to continue.');
    view.replaceChildren(
      h(
        'p',
        { class: 'error', role: 'alert', 'data-testid': 'boot-error' },
        `The console cannot start: ${err.message}`,
      ),
    );
    return;
  }
  started();
}

boot();
