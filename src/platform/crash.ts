/**
 * Test-only crash points. `CRASH_AT=<point>[,<point>...]` makes the process kill itself with
 * SIGKILL the moment it reaches a named point, as a kill -9 would: no flush, no cleanup.
 * `CRASH_AFTER=<n>` lets the point pass n times first. Unset, a check is one Set lookup.
 */
const points = new Set((process.env.CRASH_AT ?? '').split(',').map((s) => s.trim()).filter(Boolean));
let skip = Number(process.env.CRASH_AFTER ?? '0') || 0;

export function crashPoint(name: string): void {
  if (points.size === 0 || !points.has(name)) return;
  if (skip-- > 0) return;
  process.kill(process.pid, 'SIGKILL');
}
