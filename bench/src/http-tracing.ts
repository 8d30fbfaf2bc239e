/**
 * HTTP tracing, measured: the gateway's own fastify hooks (src/gateway/http/tracing.ts) against
 * @fastify/otel, on the same app (POST /orders with the real TypeBox schemas), as CPU per request
 * of the server process. The server runs in a child process so the load generator's CPU is not
 * counted; variants alternate, each run several times.
 *
 *   node --import tsx bench/src/http-tracing.ts [--requests 20000] [--rounds 3] [--concurrency 16]
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import Fastify from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { metrics, trace, SpanKind, type Span } from '@opentelemetry/api';
import {
  BatchSpanProcessor,
  NodeTracerProvider,
  type ReadableSpan,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-node';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { FastifyOtelInstrumentation } from '@fastify/otel';
import { pino } from 'pino';
import { instrumentHttp } from '../../src/gateway/http/tracing.js';
import { errorResponses, OrderBody, OrderView } from '../../src/gateway/http/schemas.js';

const VARIANTS = ['none', 'hooks', 'fastify-otel', 'fastify-otel-default'] as const;
type Variant = (typeof VARIANTS)[number];

/** Spans are batched and dropped: the export's own cost is the same for every variant. */
class DiscardExporter implements SpanExporter {
  spans = 0;
  /** `name (kind)` of the spans seen: the variants must name the request span alike. */
  readonly names = new Set<string>();
  export(spans: ReadableSpan[], done: (r: ExportResult) => void): void {
    this.spans += spans.length;
    for (const s of spans)
      if (this.names.size < 20)
        this.names.add(`${s.name} (${SpanKind[s.kind]}${s.parentSpanContext ? ', with parent' : ''})`);
    done({ code: ExportResultCode.SUCCESS });
  }
  async shutdown(): Promise<void> {}
}

async function serve(variant: Variant): Promise<void> {
  const exporter = new DiscardExporter();
  const provider = new NodeTracerProvider({ spanProcessors: [new BatchSpanProcessor(exporter)] });
  provider.register();
  const meterProvider = new MeterProvider();
  metrics.setGlobalMeterProvider(meterProvider);
  const meter = meterProvider.getMeter('bench');
  const app = Fastify({ loggerInstance: pino({ level: 'silent' }) }).withTypeProvider<TypeBoxTypeProvider>();
  const seen = new Set<string>();
  if (variant === 'hooks') instrumentHttp(app, meter);
  if (variant === 'fastify-otel' || variant === 'fastify-otel-default') {
    const minimal = variant === 'fastify-otel';
    const otel = new FastifyOtelInstrumentation({
      // The span names the gateway's traces have always had: `POST /orders`.
      requestHook: (span: Span, req: { method: string; routeOptions: { url?: string } }) =>
        span.updateName(`${req.method} ${req.routeOptions.url ?? ''}`),
      ...(minimal ? { instrumentHandler: false, instrumentHooks: false } : {}),
    });
    otel.setTracerProvider(provider);
    await app.register(otel.plugin());
    // @fastify/otel makes spans only; the request-duration histogram stays a hook of ours.
    const duration = meter.createHistogram('http.server.request.duration', { unit: 's' });
    app.addHook('onResponse', (req, reply, done) => {
      duration.record(reply.elapsedTime / 1000, {
        'http.request.method': req.method,
        'http.route': req.routeOptions.url ?? '',
        'http.response.status_code': reply.statusCode,
      });
      done();
    });
  }
  app.post(
    '/orders',
    { schema: { body: OrderBody, response: { 201: OrderView, ...errorResponses } } },
    async (req, reply) => {
      // The trace context must be the request's inside the handler, as the saga's spans need it.
      const traceId = trace.getActiveSpan()?.spanContext().traceId;
      if (traceId) seen.add(traceId);
      const now = new Date().toISOString();
      return reply.code(201).send({
        id: 'o1',
        customer_id: req.body.customer_id,
        status: 'PENDING',
        total: 25,
        items: req.body.items.map((i) => ({ product_id: i.product_id, quantity: i.quantity, price: i.price })),
        created_at: now,
        updated_at: now,
        saga_status: 'RUNNING',
      });
    },
  );
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  let mark = process.cpuUsage();
  process.on('message', (m: string) => {
    if (m === 'mark') {
      seen.clear();
      mark = process.cpuUsage();
      process.send?.('marked');
    } else if (m === 'report') {
      const d = process.cpuUsage(mark);
      process.send?.({ cpuUs: d.user + d.system, traces: seen.size });
    } else if (m === 'stop') {
      void provider
        .forceFlush()
        .then(() => process.send?.({ exported: exporter.spans, names: [...exporter.names] }, () => process.exit(0)));
    }
  });
  process.send?.({ url });
}

const ask = async <T>(child: ChildProcess, msg: string): Promise<T> => {
  child.send(msg);
  return (await once(child, 'message'))[0] as T;
};

async function load(url: string, requests: number, concurrency: number): Promise<void> {
  const body = JSON.stringify({ customer_id: 'c1', items: [{ product_id: 'prod_1', quantity: 1, price: 25 }] });
  let next = 0;
  const worker = async () => {
    while (next < requests) {
      next++;
      // A caller's trace, as a traced client sends it: the server must continue it.
      const traceId = Math.floor(Math.random() * 2 ** 52)
        .toString(16)
        .padStart(32, '0');
      const res = await fetch(`${url}/orders`, {
        method: 'POST',
        body,
        headers: { 'content-type': 'application/json', traceparent: `00-${traceId}-00f067aa0ba902b7-01` },
      });
      if (res.status !== 201) throw new Error(`status ${res.status}`);
      await res.arrayBuffer();
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

async function measure(variant: Variant, requests: number, concurrency: number) {
  const child = fork(fileURLToPath(import.meta.url), ['--serve', variant], { execArgv: ['--import', 'tsx'] });
  const { url } = (await once(child, 'message'))[0] as { url: string };
  await load(url, Math.min(2_000, requests), concurrency); // warm-up: JIT, connections
  await ask(child, 'mark');
  const t0 = performance.now();
  await load(url, requests, concurrency);
  const seconds = (performance.now() - t0) / 1000;
  const { cpuUs, traces } = await ask<{ cpuUs: number; traces: number }>(child, 'report');
  const { exported, names } = await ask<{ exported: number; names: string[] }>(child, 'stop');
  return {
    variant,
    cpuUsPerRequest: cpuUs / requests,
    rps: requests / seconds,
    tracesContinued: traces,
    exported,
    names,
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      serve: { type: 'string' },
      requests: { type: 'string', default: '20000' },
      rounds: { type: 'string', default: '3' },
      concurrency: { type: 'string', default: '16' },
    },
  });
  if (values.serve !== undefined) {
    if (!VARIANTS.includes(values.serve as Variant)) throw new Error(`unknown variant ${values.serve}`);
    return serve(values.serve as Variant);
  }
  const requests = Number(values.requests);
  const rounds = Number(values.rounds);
  const concurrency = Number(values.concurrency);
  const results = new Map<Variant, number[]>();
  for (let r = 0; r < rounds; r++) {
    for (const v of VARIANTS) {
      const m = await measure(v, requests, concurrency);
      results.set(v, [...(results.get(v) ?? []), m.cpuUsPerRequest]);
      console.log(
        `round ${r + 1} ${v.padEnd(21)} ${m.cpuUsPerRequest.toFixed(1).padStart(6)} µs CPU/request  ${m.rps.toFixed(0).padStart(5)} req/s  traces continued ${m.tracesContinued}  spans exported ${m.exported}`,
      );
      if (r === 0) console.log(`        spans: ${m.names.join('; ') || 'none'}`);
    }
  }
  console.log('\nmedian CPU per request (server process):');
  for (const [v, xs] of results) {
    const sorted = [...xs].sort((a, b) => a - b);
    console.log(`  ${v.padEnd(21)} ${(sorted[Math.floor(sorted.length / 2)] as number).toFixed(1)} µs`);
  }
}

await main();
