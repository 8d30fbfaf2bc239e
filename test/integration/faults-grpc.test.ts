/**
 * The fault switchboard, each kind on each side, with exactly its documented effect: the gateway's
 * engine and admin app (test/helpers/gateway-app.ts) over the real participants on real gRPC
 * servers with mutual TLS. Gateway side: error (definite, compensated, fault_injected), uncertain
 * (retried), latency (delays; past the deadline, uncertain). Participant side (x-fault): error,
 * uncertain, latency, after_effect (the effect commits, the answer is lost, the retry replays it:
 * one charge), and a participant with FAULTS_ENABLED=0 ignoring x-fault. Every fault is on the
 * attempt's span (fault.kind, fault.rule_id, a fault.injected event) and on the saga's timeline.
 * And who may send x-fault: only a caller authenticated as the gateway; in plaintext
 * (GRPC_INSECURE=1) nobody, so an anonymous `x-fault: crash` crashes nothing (review N5).
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { metrics } from '@opentelemetry/api';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { FaultBoard, validateFaultPlan } from '../../src/faults/plan.js';
import { PLACE_ORDER_DEFINITION } from '../../src/gateway/place-order.js';
import { vocabularyOf } from '../../src/faults/vocabulary.js';
import { gatewayApp, type GatewayApp } from '../helpers/gateway-app.js';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { Logger } from '../../src/platform/telemetry/logger.js';
import { credentials, Metadata, ServerCredentials } from '@grpc/grpc-js';
import {
  PaymentServiceClient,
  PaymentServiceService,
  PaymentStatus,
  ChargeOutcome,
} from '../../src/gen/payment/v1/payment.js';
import { callUnary, startGrpcServer } from '../../src/platform/grpc/grpc.js';
import { createPaymentService } from '../../src/services/payment/server.js';
import { openPaymentDatabase } from '../../src/services/payment/store.js';
import { captureLogger, silentLogger, startMain, tempDir } from '../helpers/participants.js';
import path from 'node:path';
import { aroundWithFaults } from '../../src/faults/participant.js';

const spans = new InMemorySpanExporter();
const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
provider.register();
after(() => provider.shutdown());

/** Reads the metrics on demand. */
class TestReader extends MetricReader {
  protected onShutdown(): Promise<void> {
    return Promise.resolve();
  }
  protected onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
}
const reader = new TestReader();
metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));

/** faults_injected (faults_injected_total in Prometheus) by meter scope, as `target/kind` → count. */
async function injected(): Promise<Record<string, Record<string, number>>> {
  const { resourceMetrics } = await reader.collect();
  const out: Record<string, Record<string, number>> = {};
  for (const sm of resourceMetrics.scopeMetrics) {
    for (const m of sm.metrics) {
      if (m.descriptor.name !== 'faults_injected') continue;
      const byScope = (out[sm.scope.name] ??= {});
      for (const p of m.dataPoints)
        byScope[`${String(p.attributes.target)}/${String(p.attributes.kind)}`] = p.value as number;
    }
  }
  return out;
}

const FAST = {
  action: { maxAttempts: 5, initialBackoffMs: 10, maxBackoffMs: 20, multiplier: 2 },
  compensation: { maxAttempts: 5, initialBackoffMs: 10, maxBackoffMs: 20, multiplier: 2 },
};

async function withApp(
  rules: unknown[],
  fn: (g: GatewayApp, board: FaultBoard) => Promise<void>,
  opts: { participantFaults?: boolean; stepTimeoutMs?: number; logger?: Logger } = {},
): Promise<void> {
  const board = new FaultBoard(validateFaultPlan({ rules }, vocabularyOf([PLACE_ORDER_DEFINITION])));
  const g = await gatewayApp({
    faults: board,
    participantFaults: opts.participantFaults,
    logger: opts.logger,
    policies: { ...FAST, ...(opts.stepTimeoutMs ? { stepTimeoutMs: opts.stepTimeoutMs } : {}) },
  });
  try {
    await fn(g, board);
  } finally {
    await g.close();
  }
}

/** Places one order and waits for its saga to end; returns the order, the saga and its timeline. */
async function place(g: GatewayApp) {
  const t0 = performance.now();
  const res = await g.app.inject({
    method: 'POST',
    url: '/orders',
    headers: { prefer: 'wait=20' },
    payload: { customer_id: 'cust_1', items: [{ product_id: 'prod_1', quantity: 1, price: 25 }] },
  });
  const elapsedMs = performance.now() - t0;
  assert.equal(res.statusCode, 201, res.body);
  const order = res.json<{ id: string; status: string; reason?: string }>();
  const saga = await g.log.get(order.id);
  assert.ok(saga);
  const events = await g.log.events(order.id);
  return { order, saga, events, elapsedMs };
}

const failedOf = (events: Awaited<ReturnType<typeof place>>['events'], step: string) =>
  events.filter((e) => e.type === 'STEP_FAILED' && e.step === step);
const count = (g: GatewayApp, db: 'order' | 'inventory' | 'payment', sql: string, ...args: unknown[]) =>
  (g.dbs[db].prepare(sql).get(...args) as { n: number }).n;

function faultSpans(ruleId: string) {
  return spans.getFinishedSpans().filter((s) => s.attributes['fault.rule_id'] === ruleId);
}

describe('gateway side', () => {
  test('error on reserve_stock: a definite refusal, not called, compensated with fault_injected', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const logger = pino(
      { level: 'warn' },
      new Writable({ write: (c, _e, cb) => (lines.push(JSON.parse(String(c)) as Record<string, unknown>), cb()) }),
    );
    await withApp(
      [{ id: 'no-stock', target: { step: 'reserve_stock' }, kind: 'error' }],
      async (g, board) => {
        const { order, saga, events } = await place(g);
        assert.equal(saga.status, 'COMPENSATED');
        assert.equal(order.status, 'CANCELLED');
        assert.equal(order.reason, 'fault_injected');
        assert.deepEqual(saga.failure && { step: saga.failure.step, code: saga.failure.code }, {
          step: 'reserve_stock',
          code: 'fault_injected',
        });
        const [failed, ...more] = failedOf(events, 'reserve_stock');
        assert.equal(more.length, 0);
        assert.equal(failed?.retryable, false);
        // The rule is a field of the event, for the console's badge; the message still names it for people.
        assert.deepEqual(failed?.data, { code: 'fault_injected', fault_rule: 'no-stock' });
        assert.match(failed?.error ?? '', /fault injected by rule no-stock/);
        // The participant was never called: no reservation; create_order was compensated.
        assert.equal(count(g, 'inventory', 'SELECT count(*) AS n FROM reservations'), 0);
        assert.ok(events.some((e) => e.type === 'COMPENSATION_SUCCEEDED' && e.step === 'create_order'));
        assert.equal(board.list()[0]?.fired, 1);
        assert.equal((await injected())['test']?.['reserve_stock/error'], 1);
        const [span] = faultSpans('no-stock');
        assert.equal(span?.name, 'saga.step reserve_stock');
        assert.equal(span?.attributes['fault.kind'], 'error');
        assert.ok(span?.events.some((e) => e.name === 'fault.injected'));
        // One warning line with the saga, step, kind and rule.
        const said = lines.filter((l) => l.msg === 'fault injected: error (rule no-stock)');
        assert.equal(said.length, 1);
        assert.deepEqual(
          [said[0]?.saga_id, said[0]?.step, said[0]?.kind, said[0]?.rule_id],
          [order.id, 'reserve_stock', 'error', 'no-stock'],
        );
      },
      { logger },
    );
  });

  test('uncertain on charge_payment (twice): retried with the same key, then completed; one charge', async () => {
    await withApp(
      [
        {
          id: 'flaky-pay',
          target: { step: 'charge_payment' },
          phase: 'action',
          kind: 'uncertain',
          limit: { count: 2 },
        },
      ],
      async (g, board) => {
        const { saga, events } = await place(g);
        assert.equal(saga.status, 'COMPLETED');
        const failed = failedOf(events, 'charge_payment');
        assert.equal(failed.length, 2);
        for (const f of failed) {
          assert.equal(f.retryable, true);
          assert.match(f.error ?? '', /fault injected by rule flaky-pay: charge_payment unavailable, not called/);
        }
        assert.equal(count(g, 'payment', 'SELECT count(*) AS n FROM payments'), 1);
        assert.equal(board.list()[0]?.fired, 2);
      },
    );
  });

  test('latency on create_order: the call is delayed by at least latency_ms', async () => {
    await withApp(
      [{ id: 'slow-order', target: { step: 'create_order' }, kind: 'latency', latency_ms: 300 }],
      async (g) => {
        const { saga, events, elapsedMs } = await place(g);
        assert.equal(saga.status, 'COMPLETED');
        assert.ok(elapsedMs >= 300, `took ${elapsedMs} ms`);
        assert.equal(failedOf(events, 'create_order').length, 0);
        const [span] = faultSpans('slow-order');
        assert.equal(span?.attributes['fault.kind'], 'latency');
        assert.equal(span?.events.find((e) => e.name === 'fault.injected')?.attributes?.['fault.latency_ms'], 300);
      },
    );
  });

  test("latency past the attempt deadline: the deadline's uncertain outcome, then a retry", async () => {
    await withApp(
      [{ id: 'too-slow', target: { step: 'create_order' }, kind: 'latency', latency_ms: 1_000, limit: { count: 1 } }],
      async (g) => {
        const { saga, events } = await place(g);
        assert.equal(saga.status, 'COMPLETED');
        const [failed, ...more] = failedOf(events, 'create_order');
        assert.equal(more.length, 0);
        assert.equal(failed?.retryable, true);
        assert.match(
          failed?.error ?? '',
          /no answer within 200 ms \(fault injected by rule too-slow: latency 1000 ms\)/,
        );
      },
      { stepTimeoutMs: 200 },
    );
  });
});

describe('participant side (x-fault over mutual TLS)', () => {
  test('after_effect on Charge: the payment commits, the gateway sees UNAVAILABLE, the retry replays it: one charge', async () => {
    await withApp(
      [
        {
          id: 'lost-answer',
          target: { participant: 'payment', method: 'Charge' },
          kind: 'after_effect',
          limit: { count: 1 },
        },
      ],
      async (g, board) => {
        const { saga, events } = await place(g);
        assert.equal(saga.status, 'COMPLETED');
        const [failed, ...more] = failedOf(events, 'charge_payment');
        assert.equal(more.length, 0);
        assert.equal(failed?.retryable, true);
        assert.match(
          failed?.error ?? '',
          /UNAVAILABLE: fault injected by rule lost-answer: Charge done, its answer lost/,
        );
        // One payment, charged once, its total; the second attempt was answered from the inbox.
        assert.equal(
          count(g, 'payment', "SELECT count(*) AS n FROM payments WHERE status = 'CHARGED' AND amount_cents = 2500"),
          1,
        );
        assert.equal(count(g, 'payment', 'SELECT count(*) AS n FROM payments'), 1);
        assert.equal(
          count(g, 'payment', 'SELECT count(*) AS n FROM inbox WHERE key = ?', `${saga.id}:charge_payment`),
          1,
        );
        assert.ok(events.some((e) => e.type === 'STEP_SUCCEEDED' && e.step === 'charge_payment' && e.attempt === 2));
        assert.equal(board.list()[0]?.fired, 1);
        // The gateway's attempt span and the participant's own fault span both carry it.
        assert.deepEqual(
          faultSpans('lost-answer')
            .map((s) => s.name)
            .sort(),
          ['fault after_effect', 'saga.step charge_payment'],
        );
        // Counted by the gateway (its meter) and by the participant (its own).
        const counts = await injected();
        assert.equal(counts['test']?.['payment.Charge/after_effect'], 1);
        assert.equal(counts['ecommerce-sagas/faults']?.['payment.Charge/after_effect'], 1);
      },
    );
  });

  test('error on Reserve: FAILED_PRECONDITION with x-error-code fault_injected, handler not run, compensated with fault_injected', async () => {
    await withApp(
      [{ id: 'refuse-reserve', target: { participant: 'inventory', method: 'Reserve' }, kind: 'error' }],
      async (g) => {
        const { saga, events, order } = await place(g);
        assert.equal(saga.status, 'COMPENSATED');
        assert.equal(saga.failure?.code, 'fault_injected');
        assert.equal(order.reason, 'fault_injected');
        const [failed] = failedOf(events, 'reserve_stock');
        assert.match(
          failed?.error ?? '',
          /FAILED_PRECONDITION: fault injected by rule refuse-reserve: Reserve refused/,
        );
        // A participant-side refusal is the rule's because the participant says so (fault_injected).
        assert.deepEqual(failed?.data, { code: 'fault_injected', fault_rule: 'refuse-reserve' });
        assert.equal(count(g, 'inventory', 'SELECT count(*) AS n FROM reservations'), 0);
      },
    );
  });

  test('uncertain on CreateOrder (once): UNAVAILABLE, handler not run, retried, one order', async () => {
    await withApp(
      [
        {
          id: 'order-down',
          target: { participant: 'order', method: 'CreateOrder' },
          kind: 'uncertain',
          limit: { count: 1 },
        },
      ],
      async (g) => {
        const { saga, events } = await place(g);
        assert.equal(saga.status, 'COMPLETED');
        const [failed, ...more] = failedOf(events, 'create_order');
        assert.equal(more.length, 0);
        assert.match(
          failed?.error ?? '',
          /UNAVAILABLE: fault injected by rule order-down: CreateOrder unavailable, not run/,
        );
        assert.equal(count(g, 'order', 'SELECT count(*) AS n FROM orders'), 1);
      },
    );
  });

  test('latency on Charge: the participant sleeps latency_ms before its handler', async () => {
    await withApp(
      [{ id: 'slow-charge', target: { participant: 'payment', method: 'Charge' }, kind: 'latency', latency_ms: 300 }],
      async (g) => {
        const { saga, events, elapsedMs } = await place(g);
        assert.equal(saga.status, 'COMPLETED');
        assert.ok(elapsedMs >= 300, `took ${elapsedMs} ms`);
        assert.equal(failedOf(events, 'charge_payment').length, 0);
        const participantSpan = faultSpans('slow-charge').find((s) => s.name === 'fault latency');
        assert.ok(participantSpan, 'the participant marks its injected latency on a span');
      },
    );
  });

  test('a participant with FAULTS_ENABLED=0 ignores x-fault: the saga completes as if nothing was sent', async () => {
    await withApp(
      [{ id: 'ignored', target: { participant: 'inventory', method: 'Reserve' }, kind: 'error' }],
      async (g, board) => {
        const { saga, events } = await place(g);
        assert.equal(saga.status, 'COMPLETED');
        assert.equal(failedOf(events, 'reserve_stock').length, 0);
        // The gateway did send it (and counts it as fired); the participant did nothing with it.
        assert.equal(board.list()[0]?.fired, 1);
        assert.equal(count(g, 'inventory', 'SELECT count(*) AS n FROM reservations'), 1);
      },
      { participantFaults: false },
    );
  });

  test('a disabled rule is not sent at all', async () => {
    await withApp(
      [{ id: 'off', enabled: false, target: { participant: 'payment', method: 'Charge' }, kind: 'error' }],
      async (g, board) => {
        const { saga } = await place(g);
        assert.equal(saga.status, 'COMPLETED');
        assert.equal(board.list()[0]?.fired, 0);
      },
    );
  });
});

describe('who may send x-fault', () => {
  /** A Charge with `x-fault: <directive>` metadata, on a raw grpc-js call (what any client can send). */
  function chargeWithFault(client: PaymentServiceClient, orderId: string, directive: string) {
    const md = new Metadata();
    md.set('x-fault', directive);
    md.set('x-idempotency-key', `${orderId}:charge_payment`);
    return new Promise<{ code: number | null; outcome?: ChargeOutcome }>((resolve) =>
      client.charge({ orderId, amountCents: 100 }, md, { deadline: Date.now() + 3_000 }, (err, res) =>
        resolve(err ? { code: err.code } : { code: null, outcome: res.outcome }),
      ),
    );
  }

  test('plaintext (GRPC_INSECURE=1) with FAULTS_ENABLED=1: every directive is ignored (the call runs as if none was sent), with one warning for many', async () => {
    const { logger, lines } = captureLogger();
    const db = openPaymentDatabase(path.join(tempDir('faults-insecure'), 'payment.db'), 'normal');
    const implementation = createPaymentService({ db, logger: silentLogger, chargeLimitCents: 1_000_000 });
    const server = await startGrpcServer(
      { host: '127.0.0.1', port: 0 },
      [{ definition: PaymentServiceService, implementation }],
      ServerCredentials.createInsecure(),
      { around: aroundWithFaults({ service: 'payment', logger }) },
    );
    const client = new PaymentServiceClient(server.address, credentials.createInsecure());
    try {
      for (const [i, d] of ['error;rule=anon', 'uncertain', 'after_effect', 'latency;latency_ms=5000'].entries()) {
        assert.deepEqual(
          await chargeWithFault(client, `anon-${i}`, d),
          { code: null, outcome: ChargeOutcome.CHARGE_OUTCOME_CHARGED },
          d,
        );
      }
      const said = lines.filter(
        (l) => l.msg === 'an x-fault directive from a caller not authenticated as the gateway is ignored',
      );
      assert.equal(said.length, 1, 'one line for four ignored directives');
      assert.deepEqual([said[0]?.level, said[0]?.caller, said[0]?.x_fault], ['warn', null, 'error;rule=anon']);
      assert.equal(
        lines.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('fault injected')).length,
        0,
        'nothing injected',
      );
    } finally {
      client.close();
      await server.shutdown(0);
      db.close();
    }
  });

  test("review N5: a participant with GRPC_INSECURE=1 FAULTS_ENABLED=1 survives an anonymous caller's x-fault: crash, and says at start that it ignores x-fault", async () => {
    const proc = startMain('payment', {
      DATA_DIR: tempDir('faults-n5'),
      GRPC_INSECURE: '1',
      FAULTS_ENABLED: '1',
      PAYMENT_SERVICE_ADDR: '127.0.0.1:0',
      METRICS_ADDR: 'off',
      LOG_LEVEL: 'warn',
      LOG_FORMAT: 'json',
    });
    const ready = await proc.ready;
    const client = new PaymentServiceClient(ready.address, credentials.createInsecure());
    try {
      for (const i of [1, 2, 3])
        assert.deepEqual(
          await chargeWithFault(client, `n5-${i}`, 'crash;rule=from-me'),
          { code: null, outcome: ChargeOutcome.CHARGE_OUTCOME_CHARGED },
          `crash #${i}`,
        );
      // Still the same process, still serving.
      const res = await callUnary(client.getPayment.bind(client), { orderId: 'n5-3' }, { timeoutMs: 3_000 });
      assert.equal(res.status, PaymentStatus.PAYMENT_STATUS_CHARGED);
    } finally {
      client.close();
    }
    proc.stop();
    const { code } = await proc.exit;
    assert.equal(code, 0, 'stopped by SIGTERM, not killed by a fault');
    const logged = proc.stdout().map((l) => JSON.parse(l) as { level: string; msg: string; caller?: unknown });
    assert.ok(
      logged.some(
        (l) =>
          l.level === 'warn' &&
          /x-fault directives are ignored: with GRPC_INSECURE=1 no caller is authenticated as the gateway/.test(l.msg),
      ),
      'said at start',
    );
    const ignored = logged.filter(
      (l) => l.msg === 'an x-fault directive from a caller not authenticated as the gateway is ignored',
    );
    assert.equal(ignored.length, 1, 'one warning for three directives');
    assert.equal(ignored[0]?.level, 'warn');
  });
});
