import type { CrashSettings } from './config.js';
import type { Logger } from './logger.js';

/**
 * Test-only crash points. `CRASH_AT=<point>[,<point>...]` makes the process kill itself with
 * SIGKILL the moment it reaches a named point, as a kill -9 would: no flush, no cleanup.
 * `CRASH_AFTER=<n>` lets the point pass n times first. Both are read with the process's
 * configuration, which arms them here at start; unarmed, a check is one Set lookup.
 *
 * They are a test hook, off in deployments (DESIGN.md §6b): CRASH_AT is honoured only with
 * SAGAS_TEST_HOOKS=1, so a stray value left in an environment cannot crash-loop a process.
 */
let points = new Set<string>();
let skip = 0;

/** Arms the points `settings` names, or ignores them (one warning line) when the test hooks are off. Returns what was armed. */
export function armCrashPoints(settings: CrashSettings, logger: Pick<Logger, 'warn' | 'info'>): readonly string[] {
  if (settings.points.length > 0 && !settings.hooks) {
    logger.warn({ CRASH_AT: settings.points }, 'CRASH_AT is ignored: crash points are a test hook, honoured only with SAGAS_TEST_HOOKS=1');
    points = new Set();
    skip = 0;
    return [];
  }
  points = new Set(settings.points);
  skip = settings.after;
  if (points.size > 0) logger.info({ CRASH_AT: settings.points, CRASH_AFTER: settings.after }, 'test hooks on: crash points armed');
  return [...points];
}

export function crashPoint(name: string): void {
  if (points.size === 0 || !points.has(name)) return;
  if (skip-- > 0) return;
  process.kill(process.pid, 'SIGKILL');
}
