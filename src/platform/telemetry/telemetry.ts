import http from 'node:http';
import { metrics, type Meter } from '@opentelemetry/api';
import {
  AlwaysOffSampler,
  NodeTracerProvider,
  BatchSpanProcessor,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-node';
import {
  MeterProvider,
  PeriodicExportingMetricReader,
  type PushMetricExporter,
  type MetricReader,
} from '@opentelemetry/sdk-metrics';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { OTLPTraceExporter as OTLPTraceJson } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as OTLPTraceProto } from '@opentelemetry/exporter-trace-otlp-proto';
import { OTLPMetricExporter as OTLPMetricJson } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPMetricExporter as OTLPMetricProto } from '@opentelemetry/exporter-metrics-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { formatAddr, redactPassword, type HostPort, type TelemetrySettings } from '../config/config.js';
import type { Logger } from './logger.js';

export interface Telemetry {
  meter: Meter;
  /** Answers a Prometheus scrape (text format). */
  serveMetrics: (req: http.IncomingMessage, res: http.ServerResponse) => void;
  /** Flushes spans and metrics still buffered; call last at shutdown. */
  shutdown(): Promise<void>;
}

/**
 * The OpenTelemetry SDK for one process: a tracer provider (W3C trace context, real ids on every
 * log line and saga-log row; spans recorded only when they are exported) and a meter provider read by
 * Prometheus scrapes. With `OTEL_EXPORTER_OTLP_ENDPOINT` set, spans and metrics are also pushed
 * over OTLP; without it nothing is exported and nothing complains. Every OTEL_* setting comes from
 * the process's configuration (src/platform/config/config.ts), given to the SDK explicitly.
 */
export function initTelemetry(logger: Logger, settings: TelemetrySettings): Telemetry {
  const { serviceName, traces, metrics: push, headers } = settings;
  const resource = resourceFromAttributes({ ...settings.resourceAttributes, 'service.name': serviceName });

  const spanProcessors = [];
  if (traces) {
    const options = { url: traces.url, headers };
    const exporter: SpanExporter =
      traces.protocol === 'http/json' ? new OTLPTraceJson(options) : new OTLPTraceProto(options);
    spanProcessors.push(new BatchSpanProcessor(exporter, { scheduledDelayMillis: traces.scheduleDelayMs }));
  }
  // With nowhere to send spans, none is recorded: the SDK still makes and propagates real trace
  // and span ids (log lines and saga-log rows carry them), but a span is a bare context, with no
  // attributes, events or timings built only to be dropped (bench/README.md: ~3 % of the CPU).
  const tracerProvider = new NodeTracerProvider({
    resource,
    spanProcessors,
    ...(traces ? {} : { sampler: new AlwaysOffSampler() }),
  });
  tracerProvider.register();

  const prometheus = new PrometheusExporter({ preventServerStart: true });
  const readers: MetricReader[] = [prometheus];
  if (push) {
    const options = { url: push.url, headers };
    const exporter: PushMetricExporter =
      push.protocol === 'http/json' ? new OTLPMetricJson(options) : new OTLPMetricProto(options);
    readers.push(new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: push.intervalMs }));
  }
  const meterProvider = new MeterProvider({ resource, readers });
  metrics.setGlobalMeterProvider(meterProvider);
  if (traces || push)
    logger.info(
      {
        traces: traces && redactPassword(traces.url),
        metrics: push && redactPassword(push.url),
        service_name: serviceName,
      },
      'exporting over OTLP',
    );

  return {
    meter: meterProvider.getMeter('ecommerce-sagas'),
    serveMetrics: (req, res) => prometheus.getMetricsRequestHandler(req, res),
    async shutdown() {
      await Promise.allSettled([tracerProvider.shutdown(), meterProvider.shutdown()]);
    },
  };
}

export interface MetricsServer {
  address: string;
  close(): Promise<void>;
}

/** What /readyz answers: ready or not, and the checks behind it (`{"database": "ok"}`), shown in its body. */
export type Readiness = boolean | { ready: boolean; checks: Record<string, 'ok' | 'unavailable'> };

/**
 * The Prometheus endpoint of a process without an HTTP API of its own: GET /metrics on
 * `METRICS_ADDR` (loopback by default; `off` disables it), and GET /readyz, 200 while `ready()`
 * says so and 503 once it does not (a participant that is stopping, or whose database does not
 * answer), for `sagas health` and an orchestrator's probe.
 */
export async function startMetricsServer(
  telemetry: Telemetry,
  where: HostPort | 'off',
  ready: () => Readiness | Promise<Readiness> = () => true,
): Promise<MetricsServer | undefined> {
  if (where === 'off') return undefined;
  const server = http.createServer((req, res) => {
    const route = req.method === 'GET' ? req.url?.split('?')[0] : undefined;
    if (route === '/metrics') return telemetry.serveMetrics(req, res);
    if (route === '/readyz') {
      const answer = (r: Readiness) => {
        const { ready: ok, checks } = typeof r === 'boolean' ? { ready: r, checks: undefined } : r;
        res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json', 'cache-control': 'no-store' });
        res.end(`${JSON.stringify({ status: ok ? 'ready' : 'not_ready', ...(checks && { checks }) })}\n`);
      };
      void Promise.resolve()
        .then(ready)
        .then(answer, () => answer(false));
      return;
    }
    res
      .writeHead(404, { 'content-type': 'application/json' })
      .end('{"error":"not_found","message":"only GET /metrics and GET /readyz are served here"}\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(where.port, where.host, () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  return {
    address: formatAddr({ host: where.host === '0.0.0.0' ? '127.0.0.1' : where.host, port }),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
