import { pino, type Logger } from 'pino';
import { trace, isSpanContextValid } from '@opentelemetry/api';
import { oneOf, type Env } from './config.js';

export type { Logger };

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

/**
 * JSON logs on stdout. Every line carries the trace and span of the active span, so a log line,
 * a saga-log row and a trace meet on one id.
 */
export function createLogger(service: string, env: Env = process.env): Logger {
  return pino({
    level: oneOf(env, 'LOG_LEVEL', LEVELS, 'info'),
    base: { service },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    mixin() {
      const ctx = trace.getActiveSpan()?.spanContext();
      return ctx && isSpanContextValid(ctx) ? { trace_id: ctx.traceId, span_id: ctx.spanId } : {};
    },
  });
}
