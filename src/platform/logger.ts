import { pino, type Logger } from 'pino';
import { trace, isSpanContextValid } from '@opentelemetry/api';
import type { LoggingSettings } from './config.js';

export type { Logger };

/**
 * JSON logs on stdout. Every line carries the trace and span of the active span, so a log line,
 * a saga-log row and a trace meet on one id. The level comes from the process's configuration
 * (LOG_LEVEL, read with the rest of it).
 */
export function createLogger(service: string, settings: LoggingSettings = { level: 'info' }): Logger {
  return pino({
    level: settings.level,
    base: { service },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    mixin() {
      const ctx = trace.getActiveSpan()?.spanContext();
      return ctx && isSpanContextValid(ctx) ? { trace_id: ctx.traceId, span_id: ctx.spanId } : {};
    },
  });
}
