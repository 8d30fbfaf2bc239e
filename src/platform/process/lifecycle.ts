import type { Logger } from '../telemetry/logger.js';

export interface ReadyMessage {
  type: 'ready';
  service: string;
  /** Where the process listens, e.g. 127.0.0.1:9090 or http://127.0.0.1:8080 */
  address: string;
  [extra: string]: unknown;
}

/**
 * How long an orphan (its supervisor died) takes at most to stop: the graceful stop is cut short
 * so that every child of a dead `sagas start` is gone within 2 s and the next start finds its
 * ports free. The saga log is write-ahead, so a cut-short stop loses nothing.
 */
export const ORPHAN_GRACE_MS = 1_500;

/**
 * Why the IPC channel and not a poll of `process.ppid`: a supervisor's children are forked with an
 * IPC channel (a socket pair). When the parent dies, however it dies, SIGKILL included, the kernel
 * closes its end, and the child's `process` emits 'disconnect' at once, with no timer and no
 * platform difference (PR_SET_PDEATHSIG is not reachable from Node; polling the ppid costs a
 * timer in every process and reacts only at the next tick of it). Children run in their own
 * session (supervisor.ts `detached`), so no terminal hang-up reaches them either: this is the one
 * signal of the parent's death they get.
 *
 * The listener is installed when this module loads, so a parent that dies while the child is still
 * starting (opening its database, connecting) is noticed too: until `onShutdown` takes over,
 * nothing needs a graceful stop and the process exits at once.
 */
let onParentGone: () => void = () => process.exit(1);
const hasParentChannel = typeof process.send === 'function';
if (hasParentChannel) process.once('disconnect', () => onParentGone());

/**
 * Tells a parent process (the `sagas start` supervisor, a test) that we are up and where. Call it
 * after `onShutdown`: a parent may send SIGTERM as soon as it reads this, and a SIGTERM that
 * arrives before the handler is installed kills the process without a graceful stop.
 */
export function notifyReady(msg: { service: string; address: string } & Record<string, unknown>): void {
  const ready: ReadyMessage = { ...msg, type: 'ready' };
  // A send on a closed channel emits an 'error' on process; the 'disconnect' listener stops us.
  if (typeof process.send === 'function' && process.connected) process.send(ready);
}

/**
 * Runs `shutdown` once on SIGTERM/SIGINT, then exits. A second signal, or a shutdown slower than
 * `graceMs`, exits at once: the saga log is write-ahead, so nothing is lost by it. The death of
 * the supervisor (its IPC channel closes) is a SIGTERM with ORPHAN_GRACE_MS at most.
 *
 * Nothing on this path may throw before the exit timer is armed: the logger never blocks and
 * drops its lines once stdout is a broken pipe (log-sink.ts), so a process whose log pipe is gone
 * still stops.
 */
export function onShutdown(logger: Logger, shutdown: (signal: string) => Promise<void>, graceMs = 10_000): void {
  let stopping = false;
  let exiting = false;
  // The log lines still queued towards stdout go first (LogSink.flush waits 1 s at most); a
  // second exit, the second signal's, does not wait.
  const exit = (code: number) => {
    if (exiting) process.exit(code);
    exiting = true;
    // Also the code of an exit on its own, should the loop run dry while the flush waits.
    process.exitCode = code;
    try {
      logger.flush(() => process.exit(code));
    } catch {
      process.exit(code);
    }
  };
  const handler = (signal: NodeJS.Signals, grace = graceMs) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal, exiting now');
      exit(1);
    }
    stopping = true;
    const timer = setTimeout(() => {
      logger.error({ graceMs: grace }, 'graceful shutdown timed out, exiting');
      exit(1);
    }, grace);
    timer.unref();
    logger.info({ signal }, 'shutting down');
    shutdown(signal).then(
      () => {
        logger.info('stopped');
        exit(0);
      },
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        exit(1);
      },
    );
  };
  // Node calls a signal listener with (name, number): the number (15) must not become the grace.
  process.on('SIGTERM', (signal) => handler(signal));
  process.on('SIGINT', (signal) => handler(signal));
  if (!hasParentChannel) return;
  onParentGone = () => {
    logger.warn('the supervisor is gone (IPC channel closed): stopping');
    handler('SIGTERM', Math.min(graceMs, ORPHAN_GRACE_MS));
  };
}
