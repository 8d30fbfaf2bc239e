// How values read on the page: durations, ages, times, rates, money. Pure functions.

export function fmtDuration(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '–';
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  return fmtAge(ms / 1000);
}

export function fmtAge(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '–';
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86_400)} d ${Math.floor((s % 86_400) / 3600)} h`;
}

export function fmtTime(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  const p = (n, w = 2) => String(n).padStart(w, '0');
  // Local time, sortable at a glance; the ISO instant is in the <time> element's datetime.
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

export function fmtRate(x) {
  return typeof x === 'number' && Number.isFinite(x) ? x.toFixed(x < 10 ? 2 : 1) : '–';
}

export function fmtCents(cents) {
  return typeof cents === 'number' && Number.isFinite(cents) ? `$${(cents / 100).toFixed(2)}` : null;
}

/** The order behind a saga (place-order's input): its id, customer and total, where known. */
export function orderInfo(s) {
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
