import type { Logger } from './logger.js';

export interface ReadyMessage {
  type: 'ready';
  service: string;
  /** Where the process listens, e.g. 127.0.0.1:9090 or http://127.0.0.1:8080 */
  address: string;
  [extra: string]: unknown;
}

/** Tells a parent process (the `sagas start` supervisor, a test) that we are up and where. */
export function notifyReady(msg: { service: string; address: string } & Record<string, unknown>): void {
  const ready: ReadyMessage = { ...msg, type: 'ready' };
  if (typeof process.send === 'function') process.send(ready);
}

/**
 * Runs `shutdown` once on SIGTERM/SIGINT, then exits. A second signal, or a shutdown slower than
 * `graceMs`, exits at once: the saga log is write-ahead, so nothing is lost by it.
 */
export function onShutdown(logger: Logger, shutdown: (signal: string) => Promise<void>, graceMs = 10_000): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal, exiting now');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const timer = setTimeout(() => {
      logger.error({ graceMs }, 'graceful shutdown timed out, exiting');
      process.exit(1);
    }, graceMs);
    timer.unref();
    shutdown(signal).then(
      () => {
        logger.info('stopped');
        logger.flush?.();
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
  // When a supervisor's IPC channel closes (it died), do not linger as an orphan.
  if (typeof process.send === 'function') process.on('disconnect', () => handler('SIGTERM'));
}
