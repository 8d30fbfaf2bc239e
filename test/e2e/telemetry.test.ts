import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { freshSystem, eventually } from '../helpers/system.js';
import { OtlpReceiver, type ReceivedSpan } from '../helpers/otlp-receiver.js';

const ORDER = { customer_id: 'cust_otel', items: [{ product_id: 'prod_1', quantity: 1, price: 12.5 }] };
const STEPS = ['create_order', 'reserve_stock', 'charge_payment', 'confirm_order', 'commit_stock'];

let receiver: OtlpReceiver;
let sys: Awaited<ReturnType<typeof freshSystem>>;
before(async () => {
  receiver = new OtlpReceiver();
  const endpoint = await receiver.start();
  sys = await freshSystem({
    OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_BSP_SCHEDULE_DELAY: '100',
    OTEL_METRIC_EXPORT_INTERVAL: '300',
    SAGA_LEASE_MS: '500',
    SAGA_RECOVERY_INTERVAL_MS: '100',
    LOG_LEVEL: 'info',
  });
});
after(async () => {
  await sys?.stop();
  await receiver?.close();
});

function assertNoOrphans(spans: ReceivedSpan[]): void {
  const ids = new Set(spans.map((s) => s.spanId));
  const orphans = spans.filter((s) => s.parentSpanId && !ids.has(s.parentSpanId));
  assert.deepEqual(
    orphans.map((s) => `${s.service}:${s.name}`),
    [],
    'every parent is in the trace',
  );
  assert.equal(spans.filter((s) => !s.parentSpanId).length, 1, 'one root');
}

test('one POST /orders is one trace across the four services, and the saga log points at it', async () => {
  const r = await sys.api('POST', '/orders', ORDER, { Prefer: 'wait=10', 'X-Request-Id': 'otel-req-1' });
  assert.equal(r.body.status, 'CONFIRMED');
  const timeline = (await sys.admin('GET', `/api/sagas/${r.body.id}`)).body;
  const traceId: string = timeline.events[0].trace_id;
  assert.match(traceId, /^[0-9a-f]{32}$/);
  assert.ok(
    timeline.events.every(
      (e: { trace_id: string; span_id: string }) => e.trace_id === traceId && /^[0-9a-f]{16}$/.test(e.span_id),
    ),
  );

  const expected = [
    'POST /orders',
    'saga place_order',
    ...STEPS.map((s) => `saga.step ${s}`),
    'order.v1.OrderService/CreateOrder',
    'inventory.v1.InventoryService/Reserve',
    'payment.v1.PaymentService/Charge',
    'order.v1.OrderService/ConfirmOrder',
    'inventory.v1.InventoryService/Commit',
  ];
  // Each process exports in its own batches: wait until every expected span has arrived.
  const spans = await eventually('the whole trace to arrive', async () => {
    const t = receiver.trace(traceId);
    const names = new Set(t.map((s) => s.name));
    const serverSpans = t.filter((s) => s.kind === 2 && s.service !== 'gateway');
    return expected.every((n) => names.has(n)) && serverSpans.length >= 5 ? t : undefined;
  });
  assert.deepEqual([...new Set(spans.map((s) => s.service))].sort(), ['gateway', 'inventory', 'order', 'payment']);
  assertNoOrphans(spans);
  const root = spans.find((s) => !s.parentSpanId);
  assert.equal(root?.name, 'POST /orders');
  const charge = spans.filter((s) => s.name === 'payment.v1.PaymentService/Charge');
  assert.deepEqual(charge.map((s) => s.service).sort(), ['gateway', 'payment'], 'client and server span of the call');
  const step = spans.find((s) => s.name === 'saga.step charge_payment');
  assert.equal(step?.attributes['saga.step'], 'charge_payment');
  assert.equal(step?.attributes['saga.id'], r.body.id);
  assert.equal(step?.attributes['saga.outcome'], 'succeeded');
  // The saga-log rows of a step carry that step's span.
  const stepEvent = timeline.events.find(
    (e: { type: string; step: string }) => e.type === 'STEP_SUCCEEDED' && e.step === 'charge_payment',
  );
  assert.equal(stepEvent.span_id, step?.spanId);
  const sagaSpan = spans.find((s) => s.name === 'saga place_order');
  assert.equal(sagaSpan?.attributes['saga.id'], r.body.id);
  assert.equal(sagaSpan?.attributes['order.id'], r.body.id);

  // Log lines carry the same trace, and the request id.
  const gatewayLog = sys.procs.gateway
    .output()
    .filter((l) => l.includes(r.body.id))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.ok(gatewayLog.length > 0);
  assert.ok(
    gatewayLog.some((l) => l.trace_id === traceId && l.reqId === 'otel-req-1'),
    'the accept line carries trace and request ids',
  );
  const orderLog = sys.procs.order
    .output()
    .filter((l) => l.includes(r.body.id))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.ok(orderLog.length > 0 && orderLog.every((l) => l.trace_id === traceId && typeof l.span_id === 'string'));
  assert.equal(r.headers.get('x-request-id'), 'otel-req-1');
});

test('metrics go out over OTLP from every process', async () => {
  await eventually('the saga and rpc metrics', async () =>
    receiver.metrics.get('saga_finished')?.has('gateway') &&
    ['order', 'inventory', 'payment'].every((s) => receiver.metrics.get('rpc.server.duration')?.has(s))
      ? true
      : undefined,
  );
  for (const m of [
    'saga_started',
    'saga_duration_seconds',
    'saga_step_duration_seconds',
    'saga_inflight',
    'http.server.request.duration',
    'idempotency_fallback_active',
  ]) {
    assert.ok(receiver.metrics.has(m), `metric ${m}`);
  }
});

test('a saga resumed after a crash continues its original trace and links to the recovery', async () => {
  const armed = await sys.restart('gateway', { CRASH_AT: 'saga.reserve_stock.after_intent', SAGAS_TEST_HOOKS: '1' });
  const r = await sys.api('POST', '/orders', ORDER);
  assert.equal(r.status, 201);
  assert.equal((await armed.exited).signal, 'SIGKILL');
  await sys.restart('gateway');
  const timeline = await eventually('the saga to complete', async () => {
    const t = await sys.admin('GET', `/api/sagas/${r.body.id}`);
    return t.body.status === 'COMPLETED' ? t.body : undefined;
  });
  const traceId: string = timeline.events[0].trace_id;
  const resumed = await eventually('the resumed saga span', async () =>
    receiver.trace(traceId).find((s) => s.name === 'saga place_order' && s.attributes['saga.resumed'] === true),
  );
  assert.equal(resumed.links.length, 1);
  const recovery = receiver.spans.find((s) => s.name === 'saga.recovery' && s.spanId === resumed.links[0]?.spanId);
  assert.ok(recovery, 'the link points at the recovering process span');
  const resumedEvent = timeline.events.find((e: { type: string }) => e.type === 'SAGA_RESUMED');
  assert.equal(resumedEvent.trace_id, traceId);
  await eventually('the resumed steps in the same trace', async () =>
    receiver.trace(traceId).some((s) => s.name === 'saga.step commit_stock') ? true : undefined,
  );
});
