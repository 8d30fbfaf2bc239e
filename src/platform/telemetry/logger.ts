import { pino, type Logger } from 'pino';
import { trace, isSpanContextValid } from '@opentelemetry/api';
import type { LoggingSettings } from '../config/config.js';
import { LogSink } from './log-sink.js';

export type { Logger };

/**
 * JSON logs on stdout. Every line carries the trace and span of the active span, so a log line,
 * a saga-log row and a trace meet on one id. The level comes from the process's configuration
 * (LOG_LEVEL, read with the rest of it).
 *
 * Lines go through one LogSink per process (log-sink.ts): batched per event-loop turn, never
 * blocking, dropped once stdout is a broken pipe, and what is left written at exit.
 */
export function createLogger(service: string, settings: LoggingSettings = { level: 'info' }): Logger {
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
    stdoutSink(),
  );
}

let sink: LogSink | undefined;

/** The process's one sink on stdout (every logger of the process shares it, so lines stay in order). */
function stdoutSink(): LogSink {
  if (sink) return sink;
  const s = new LogSink(process.stdout);
  sink = s;
  ignoreBrokenPipes(() => s.markBroken());
  process.once('exit', () => s.flushSync());
  return s;
}

let pipesGuarded = false;
let onStdoutBroken: (() => void) | undefined;

/**
 * A write to process.stdout/stderr whose reader is gone emits EPIPE as an 'error' event, which
 * unhandled would end the process as an uncaught exception (from a library's console.error, in
 * the middle of a graceful stop). The output has nowhere to go: drop it and keep running. Any
 * other error is thrown as before.
 */
export function ignoreBrokenPipes(stdoutBroken?: () => void): void {
  onStdoutBroken ??= stdoutBroken;
  if (pipesGuarded) return;
  pipesGuarded = true;
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE' && err.code !== 'ERR_STREAM_DESTROYED') throw err;
      if (stream === process.stdout) onStdoutBroken?.();
    });
  }
}
