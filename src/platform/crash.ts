import type { CrashSettings } from './config.js';

/**
 * Test-only crash points. `CRASH_AT=<point>[,<point>...]` makes the process kill itself with
 * SIGKILL the moment it reaches a named point, as a kill -9 would: no flush, no cleanup.
 * `CRASH_AFTER=<n>` lets the point pass n times first. Both are read with the process's
 * configuration, which arms them here at start; unarmed, a check is one Set lookup.
 */
let points = new Set<string>();
let skip = 0;

export function armCrashPoints(settings: CrashSettings): void {
  points = new Set(settings.points);
  skip = settings.after;
}

export function crashPoint(name: string): void {
  if (points.size === 0 || !points.has(name)) return;
  if (skip-- > 0) return;
  process.kill(process.pid, 'SIGKILL');
}
