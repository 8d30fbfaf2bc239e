// Building the page: elements from values (always as text, never as HTML) and small shared pieces.

/**
 * h('a', {href: '#/x', 'data-testid': 't', onclick: fn}, 'text', child) — an element; strings
 * become text nodes; null/false children and attributes are skipped.
 */
export function h(tag, attrs = {}, ...children) {
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

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export const $ = (sel, root = document) => root.querySelector(sel);

/** The page's main area, where each view draws itself. */
export const mainView = () => document.getElementById('view');

export function showBanner(text) {
  const banner = $('[data-testid="banner"]');
  banner.textContent = text;
  banner.hidden = !text;
}

export function statusBadge(status, testid) {
  return h('span', { class: `badge st-${String(status).toLowerCase()}`, 'data-testid': testid }, status);
}

export function json(value) {
  return h('pre', { class: 'json' }, value === undefined ? '—' : JSON.stringify(value, null, 2));
}

/** A table with a hidden caption, a header row and the given body. */
export function table(attrs, caption, headings, tbody) {
  return h(
    'table',
    attrs,
    h('caption', { class: 'sr-only' }, caption),
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        headings.filter(Boolean).map((t) => h('th', { scope: 'col' }, t)),
      ),
    ),
    tbody,
  );
}

/** Keeps keyboard focus on the "same" element (by its data-focus key) across a re-render. */
export function keepFocus(root, fn) {
  const key = root.contains(document.activeElement) ? document.activeElement?.getAttribute('data-focus') : null;
  fn();
  if (key) root.querySelector(`[data-focus="${CSS.escape(key)}"]`)?.focus({ preventScroll: true });
}

/**
 * Rows kept by id across refreshes (so a note being typed, or the focus on a toggle, survives):
 * `show(items)` updates each item's row, adds new ones, drops the gone, and reorders the body only
 * when the order changed.
 */
export function keyedRows(tbody, rowOf) {
  const rows = new Map();
  return (items) => {
    const seen = new Set();
    const ordered = items.map((item) => {
      seen.add(item.id);
      let row = rows.get(item.id);
      if (!row) {
        row = rowOf(item);
        rows.set(item.id, row);
      }
      row.update(item);
      return row.el;
    });
    for (const id of rows.keys()) if (!seen.has(id)) rows.delete(id);
    const same = ordered.length === tbody.children.length && ordered.every((el, i) => tbody.children[i] === el);
    if (!same) keepFocus(tbody, () => tbody.replaceChildren(...ordered));
  };
}

/** A select's options `[[value, text], …]`, replaced only when they differ; the choice is kept if still offered. */
export function setOptions(select, options) {
  const now = [...select.options].map((o) => [o.value, o.textContent]);
  if (JSON.stringify(now) === JSON.stringify(options)) return;
  const chosen = select.value;
  select.replaceChildren(...options.map(([v, t]) => h('option', { value: v }, t)));
  select.value = options.some(([v]) => v === chosen) ? chosen : (options[0]?.[0] ?? '');
}
