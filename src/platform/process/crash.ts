import type { CrashSettings } from '../config/config.js';
import type { Logger } from '../telemetry/logger.js';
import { listenForMemoryProbe } from './memory-probe.js';

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
    logger.warn(
      { CRASH_AT: settings.points },
      'CRASH_AT is ignored: crash points are a test hook, honoured only with SAGAS_TEST_HOOKS=1',
    );
    points = new Set();
    skip = 0;
    return [];
  }
  points = new Set(settings.points);
  skip = settings.after;
  if (points.size > 0)
    logger.info({ CRASH_AT: settings.points, CRASH_AFTER: settings.after }, 'test hooks on: crash points armed');
  if (settings.hooks) {
    listenForArming(logger);
    listenForMemoryProbe();
  }
  return [...points];
}

/** What a test sends over the supervisor's IPC channel to arm points in a running process. */
export interface ArmCrashMessage {
  type: 'arm-crash';
  points: string[];
  after?: number;
}

function isArmMessage(m: unknown): m is ArmCrashMessage {
  const o = m as Partial<ArmCrashMessage> | null;
  return (
    typeof o === 'object' &&
    o !== null &&
    o.type === 'arm-crash' &&
    Array.isArray(o.points) &&
    o.points.every((p) => typeof p === 'string')
  );
}

let listening = false;

/**
 * With the test hooks on, a running process can be armed by its supervisor (a test) without a
 * restart to pass CRASH_AT: a crash test then pays for one start per case, not two. It answers
 * `{ type: 'crash-armed' }` once armed.
 */
function listenForArming(logger: Pick<Logger, 'info'>): void {
  if (listening || !process.send) return;
  listening = true;
  process.on('message', (m: unknown) => {
    if (!isArmMessage(m)) return;
    points = new Set(m.points);
    skip = m.after ?? 0;
    logger.info({ CRASH_AT: m.points, CRASH_AFTER: skip }, 'test hooks on: crash points armed');
    process.send?.({ type: 'crash-armed', points: m.points });
  });
  // The listener must not keep a process alive that has nothing else to do.
  process.channel?.unref();
}

export function crashPoint(name: string): void {
  if (points.size === 0 || !points.has(name)) return;
  if (skip-- > 0) return;
  crashNow();
}

/** Dies at once as with kill -9 (no flush, no cleanup): a crash point reached, or an injected `crash` fault. */
export function crashNow(): void {
  process.kill(process.pid, 'SIGKILL');
}
