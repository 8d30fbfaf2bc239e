import http from 'node:http';
import { metrics, type Meter } from '@opentelemetry/api';
import { NodeTracerProvider, BatchSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-node';
import { MeterProvider, PeriodicExportingMetricReader, type PushMetricExporter, type MetricReader } from '@opentelemetry/sdk-metrics';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { OTLPTraceExporter as OTLPTraceJson } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as OTLPTraceProto } from '@opentelemetry/exporter-trace-otlp-proto';
import { OTLPMetricExporter as OTLPMetricJson } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPMetricExporter as OTLPMetricProto } from '@opentelemetry/exporter-metrics-otlp-proto';
import { detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import { formatAddr, int, str, parseAddr, type Env } from './config.js';
import type { Logger } from './logger.js';

export interface Telemetry {
  meter: Meter;
  /** Answers a Prometheus scrape (text format). */
  serveMetrics(req: http.IncomingMessage, res: http.ServerResponse): void;
  /** Flushes spans and metrics still buffered; call last at shutdown. */
  shutdown(): Promise<void>;
}

type Protocol = 'http/json' | 'http/protobuf';

function otlpProtocol(env: Env, signal: 'TRACES' | 'METRICS', logger: Logger): Protocol {
  const raw = str(env, `OTEL_EXPORTER_OTLP_${signal}_PROTOCOL`, str(env, 'OTEL_EXPORTER_OTLP_PROTOCOL', 'http/protobuf'));
  if (raw === 'http/json' || raw === 'http/protobuf') return raw;
  logger.warn({ protocol: raw }, 'unsupported OTLP protocol; exporting with http/protobuf (point it at port 4318)');
  return 'http/protobuf';
}

/**
 * The OpenTelemetry SDK for one process: a tracer provider (W3C trace context, spans kept in
 * process so that every log line and saga-log row carries real ids) and a meter provider read by
 * Prometheus scrapes. With `OTEL_EXPORTER_OTLP_ENDPOINT` set, spans and metrics are also pushed
 * over OTLP; without it nothing is exported and nothing complains.
 */
export function initTelemetry(defaultServiceName: string, logger: Logger, env: Env = process.env): Telemetry {
  const serviceName = str(env, 'OTEL_SERVICE_NAME', defaultServiceName);
  const resource = resourceFromAttributes({ 'service.name': serviceName }).merge(detectResources({ detectors: [envDetector] }));
  const endpoint = str(env, 'OTEL_EXPORTER_OTLP_ENDPOINT', '') || str(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', '');
  const sdkDisabled = str(env, 'OTEL_SDK_DISABLED', 'false') === 'true';

  const spanProcessors = [];
  if (endpoint && !sdkDisabled) {
    const exporter: SpanExporter = otlpProtocol(env, 'TRACES', logger) === 'http/json' ? new OTLPTraceJson() : new OTLPTraceProto();
    spanProcessors.push(new BatchSpanProcessor(exporter));
  }
  const tracerProvider = new NodeTracerProvider({ resource, spanProcessors });
  tracerProvider.register();

  const prometheus = new PrometheusExporter({ preventServerStart: true });
  const readers: MetricReader[] = [prometheus];
  if (endpoint && !sdkDisabled) {
    const exporter: PushMetricExporter = otlpProtocol(env, 'METRICS', logger) === 'http/json' ? new OTLPMetricJson() : new OTLPMetricProto();
    readers.push(new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: int(env, 'OTEL_METRIC_EXPORT_INTERVAL', 60_000, 100) }));
  }
  const meterProvider = new MeterProvider({ resource, readers });
  metrics.setGlobalMeterProvider(meterProvider);
  if (endpoint) logger.info({ endpoint, service_name: serviceName }, 'exporting traces and metrics over OTLP');

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

/**
 * The Prometheus endpoint of a process without an HTTP API of its own: GET /metrics on
 * `METRICS_ADDR` (loopback by default; `off` disables it).
 */
export async function startMetricsServer(telemetry: Telemetry, env: Env, fallbackAddr: string): Promise<MetricsServer | undefined> {
  const raw = str(env, 'METRICS_ADDR', fallbackAddr);
  if (raw === 'off') return undefined;
  const where = parseAddr('METRICS_ADDR', raw);
  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && req.url?.split('?')[0] === '/metrics') return telemetry.serveMetrics(req, res);
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not_found","message":"only GET /metrics is served here"}\n');
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
