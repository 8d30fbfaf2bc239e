import { pino, type Logger } from 'pino';
import { trace, isSpanContextValid } from '@opentelemetry/api';
import type { LoggingSettings } from './config.js';

export type { Logger };

/**
 * JSON logs on stdout. Every line carries the trace and span of the active span, so a log line,
 * a saga-log row and a trace meet on one id. The level comes from the process's configuration
 * (LOG_LEVEL, read with the rest of it).
 *
 * The destination is synchronous on purpose. pino's default (asynchronous) destination flushes
 * its buffer at process exit with sonic-boom's flushSync, which retries a failed write forever
 * unless the error is EAGAIN; when stdout is a pipe whose reader is gone (a supervisor killed
 * with -9) every write fails with EPIPE, so `process.exit` spun for ever and the process ignored
 * SIGTERM. A synchronous write meets the EPIPE at once, pino then turns the destination into a
 * no-op, and nothing is left to flush at exit.
 */
export function createLogger(service: string, settings: LoggingSettings = { level: 'info' }): Logger {
  ignoreBrokenPipes();
  return pino(
    {
      level: settings.level,
      base: { service },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      mixin() {
        const ctx = trace.getActiveSpan()?.spanContext();
        return ctx && isSpanContextValid(ctx) ? { trace_id: ctx.traceId, span_id: ctx.spanId } : {};
      },
    },
    pino.destination({ dest: 1, sync: true }),
  );
}

let pipesGuarded = false;

/**
 * A write to process.stdout/stderr whose reader is gone emits EPIPE as an 'error' event, which
 * unhandled would end the process as an uncaught exception (from a library's console.error, in
 * the middle of a graceful stop). The output has nowhere to go: drop it and keep running. Any
 * other error is thrown as before.
 */
export function ignoreBrokenPipes(): void {
  if (pipesGuarded) return;
  pipesGuarded = true;
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE' && err.code !== 'ERR_STREAM_DESTROYED') throw err;
    });
  }
}
