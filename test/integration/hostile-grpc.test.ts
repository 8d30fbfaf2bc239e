import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import fc from 'fast-check';
import {
  Client,
  Metadata,
  status,
  type ChannelCredentials,
  type handleUnaryCall,
  type MethodDefinition,
  type ServiceError,
} from '@grpc/grpc-js';
import { channelCredentials, channelOptions } from '../../src/platform/grpc/grpc.js';
import { loadTlsMaterial } from '../../src/platform/grpc/tls.js';
import { HealthService } from '../../src/gen/health/v1/health.js';
import type { ParticipantName } from '../../src/gateway/participants.js';
import { LIMITS } from '../../src/contracts/limits.js';
import { refuseUndecodable } from '../../src/platform/grpc/grpc-undecodable.js';
import {
  CancelOutcome,
  ConfirmOutcome,
  CreateOutcome,
  OrderServiceService,
  OrderStatus,
  type CreateOrderRequest,
  type OrderItem,
} from '../../src/gen/order/v1/order.js';
import {
  CommitOutcome,
  InventoryServiceService,
  ReleaseOutcome,
  ReserveOutcome,
  type ReserveRequest,
  type StockItem,
} from '../../src/gen/inventory/v1/inventory.js';
import {
  ChargeOutcome,
  PaymentServiceService,
  PaymentStatus,
  RefundOutcome,
  type ChargeRequest,
  type ChargeResponse,
} from '../../src/gen/payment/v1/payment.js';
import { createOrderService } from '../../src/services/order/server.js';
import { openOrderDatabase } from '../../src/services/order/store.js';
import { createInventoryService } from '../../src/services/inventory/server.js';
import { openInventoryDatabase } from '../../src/services/inventory/store.js';
import { createPaymentService } from '../../src/services/payment/server.js';
import { openPaymentDatabase } from '../../src/services/payment/store.js';
import { errorCode, invoke, silentLogger, tempDir } from '../helpers/participants.js';
import { serveParticipants, type ServedParticipants } from '../helpers/grpc-participants.js';
import { callerCredentials, foreignTls, mintCertificate, mtlsDir } from '../helpers/tls.js';

/**
 * Hostile input over gRPC, generated, against the three real participants (their services, inboxes
 * and SQLite files) on real gRPC servers, dialled as the gateway dials them: whatever a caller
 * sends to any method — ids empty, overlong, non-ASCII or with spaces; numbers zero, negative,
 * huge, or encoded with the wrong wire type (a double where a varint belongs); no lines, duplicated
 * lines, too many lines, unknown products; idempotency keys missing, empty, overlong, with spaces,
 * given twice; bytes that are not protobuf at all — the answer is:
 * - OK only for a request that is in fact valid (the rules of src/contracts, stated again here),
 *   and then a well-formed answer; a business refusal carried in an OK answer (a conflict, a
 *   shortage, an unknown product) changes none of the tables it refuses to touch;
 * - otherwise a definite refusal: INVALID_ARGUMENT (malformed request or key), FAILED_PRECONDITION
 *   (a key reused for another request), NOT_FOUND (an order that does not exist) — statuses the
 *   saga engine does not retry. RESOURCE_EXHAUSTED is accepted only where the transport's own
 *   limits are crossed (a message over 4 MiB, metadata over the header limit): grpc-js answers
 *   those before any handler, the gateway never sends them, and nothing is stored;
 * - never INTERNAL or UNKNOWN, always within the call's deadline, and nothing stored when refused:
 *   every table of the three databases (orders, tombstones, reservations, stock, payments, inbox)
 *   reads the same after the refusal as before it.
 * Bytes that do not decode would be refused by grpc-js itself with INTERNAL, before any of our
 * code runs; startGrpcServer binds every service through refuseUndecodable
 * (src/platform/grpc/grpc-undecodable.ts), which answers INVALID_ARGUMENT instead.
 * What the transport changes is judged as the service receives it: HTTP/2 drops a header value
 * with whitespace at either end, and joins a header given twice into one value ("a, b").
 * And whoever calls: every method, with the client certificate of every identity and of a few
 * insiders and strangers, serves the gateway alone (the last test).
 */

const CATALOG = { prod_1: 1_000_000, prod_2: 5, prod_3: 0 };
const CHARGE_LIMIT_CENTS = 50_000;
const DEADLINE_MS = 5_000;

const dir = tempDir('hostile-grpc');
const dbs = {
  order: openOrderDatabase(path.join(dir, 'order.db')),
  inventory: openInventoryDatabase(path.join(dir, 'inventory.db')),
  payment: openPaymentDatabase(path.join(dir, 'payment.db')),
};
const services = {
  order: createOrderService({ db: dbs.order, logger: silentLogger }),
  inventory: createInventoryService({ db: dbs.inventory, logger: silentLogger, catalog: CATALOG }),
  payment: createPaymentService({ db: dbs.payment, logger: silentLogger, chargeLimitCents: CHARGE_LIMIT_CENTS }),
};
let served: ServedParticipants;
/** Clients of raw bytes, each on a participant's own channel (so over its TLS, as the gateway dials). */
let raw: Record<ParticipantName, Client>;

before(async () => {
  served = await serveParticipants(services);
  // grpc-js clients dialled as the gateway dials (its certificate, each participant pinned by name).
  const dial = (name: ParticipantName) =>
    new Client(
      served.addresses[name],
      channelCredentials(served.security, 'gateway', name),
      channelOptions(served.security, name),
    );
  raw = { order: dial('order'), inventory: dial('inventory'), payment: dial('payment') };
});
after(async () => {
  for (const c of Object.values(raw ?? {})) c.close();
  await served?.close();
  for (const db of Object.values(dbs)) db.close();
});

// ---------------------------------------------------------------------------------------------
// The oracle: the rules of src/contracts, written out again so that a bug there is caught here.

const chars = (re: RegExp, max: number) => (v: string) => v.length >= 1 && v.length <= max && re.test(v);
const isOrderId = chars(/^[A-Za-z0-9_.:-]+$/, LIMITS.orderIdMax);
const isPrintable = (max: number) => chars(/^[\x21-\x7e]+$/, max);
const isReason = chars(/^[a-z0-9_]+$/, LIMITS.reasonMax);
const isKey = isPrintable(LIMITS.idempotencyKeyMax);
const inRange = (v: number, min: number, max: number) => Number.isSafeInteger(v) && v >= min && v <= max;
const linesOk = <L>(items: readonly L[], ok: (l: L) => boolean) =>
  items.length >= 1 && items.length <= LIMITS.itemsMax && items.every(ok);
const isStockLine = (l: StockItem) =>
  isPrintable(LIMITS.productIdMax)(l.productId) && inRange(l.quantity, 1, LIMITS.quantityMax);

function validCreate(req: CreateOrderRequest): boolean {
  const line = (l: OrderItem) => isStockLine(l) && inRange(l.unitPriceCents, 1, LIMITS.unitPriceMaxCents);
  if (!isOrderId(req.orderId) || !isPrintable(LIMITS.customerIdMax)(req.customerId) || !linesOk(req.items, line))
    return false;
  const total = req.items.reduce((sum, l) => sum + l.quantity * l.unitPriceCents, 0);
  return total <= LIMITS.orderTotalMaxCents && inRange(req.createdAtMs, 0, Number.MAX_SAFE_INTEGER);
}

// ---------------------------------------------------------------------------------------------
// What the databases hold.

/** Every table of the three databases, as JSON, by `<participant>.<table>`. */
function snapshot(): Map<string, string> {
  const tables = new Map<string, string>();
  for (const [name, db] of Object.entries(dbs)) {
    const names = db
      .prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
      .all();
    for (const { name: t } of names)
      tables.set(`${name}.${t}`, JSON.stringify(db.prepare(`SELECT * FROM "${t}"`).all()));
  }
  return tables;
}

function assertUnchanged(
  before: Map<string, string>,
  after: Map<string, string>,
  tables: readonly string[],
  what: string,
): void {
  for (const t of tables) assert.equal(after.get(t), before.get(t), `${t} changed by ${what}`);
}

// ---------------------------------------------------------------------------------------------
// The methods, with their oracle, the check of an OK answer, and their nearly-valid requests.

interface Rpc<Req, Res> {
  participant: ParticipantName;
  def: MethodDefinition<Req, Res>;
  /** A write: it needs exactly one valid x-idempotency-key. */
  write: boolean;
  /** Whether the request is valid; 'either' where this suite does not judge it. */
  valid(req: Req): boolean | 'either';
  /** Checks an OK answer; `before`/`after` are the databases around the call. */
  check(res: Res, req: Req, before: Map<string, string>, after: Map<string, string>, what: string): void;
  request: fc.Arbitrary<Req>;
}

/** A method, shown in a counterexample by its path. */
const rpc = <Req, Res>(r: Rpc<Req, Res>): Rpc<unknown, unknown> =>
  Object.assign(r as unknown as Rpc<unknown, unknown>, { [fc.toStringMethod]: () => r.def.path });

const BAD_IDS = [
  '',
  ' ',
  'a b',
  ' o-1',
  'o-1 ',
  'é',
  'ordre-é',
  '\u{1F600}',
  'nul\u0000',
  'tab\t',
  'a/b',
  '%20',
  'x'.repeat(LIMITS.orderIdMax + 1),
  'x'.repeat(100_000),
];
/** Ids: a few valid ones (shared by the runs, so orders meet their own history), bad ones, any string. */
const id = (valid: readonly string[]) =>
  fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...valid) },
    { weight: 2, arbitrary: fc.constantFrom(...BAD_IDS) },
    { weight: 1, arbitrary: fc.string({ maxLength: 70 }) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 70 }) },
  );
const orderId = id(['o-1', 'o-2', 'o.3:x_y', 'x'.repeat(LIMITS.orderIdMax)]);
const productId = id(['prod_1', 'prod_2', 'prod_3', 'unknown_9', '!~', 'p'.repeat(LIMITS.productIdMax)]);
const int32 = fc.oneof(
  fc.constantFrom(0, -1, 1, 2, LIMITS.quantityMax, LIMITS.quantityMax + 1, 2 ** 31 - 1, -(2 ** 31)),
  fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
);
/** int64 values a JS number carries exactly (the others do not decode: see the raw-bytes tests). */
const int64 = (...edges: number[]) =>
  fc.oneof(
    fc.constantFrom(0, -1, 1, ...edges, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER),
    fc.maxSafeInteger(),
    fc.integer({ min: 1, max: 100_000 }),
  );
/** Line lists: none, a few (duplicates common), one too many, or the most there may be. */
const lines = <L>(line: fc.Arbitrary<L>, good: L) =>
  fc.oneof(
    { weight: 4, arbitrary: fc.array(line, { maxLength: 4 }) },
    { weight: 1, arbitrary: line.map((l) => [l, l]) },
    {
      weight: 1,
      arbitrary: fc
        .constantFrom(LIMITS.itemsMax, LIMITS.itemsMax + 1, 10 * LIMITS.itemsMax)
        .map((n) => Array.from({ length: n }, () => good)),
    },
  );
const stockLine = fc.record({ productId, quantity: int32 });
const orderLine = fc.record({
  productId,
  quantity: int32,
  unitPriceCents: int64(LIMITS.unitPriceMaxCents, LIMITS.unitPriceMaxCents + 1),
});
const reason = fc.oneof(
  fc.constantFrom(
    'payment_declined',
    'insufficient_stock',
    '',
    'A',
    'a b',
    'é',
    'r'.repeat(LIMITS.reasonMax),
    'r'.repeat(LIMITS.reasonMax + 1),
  ),
  fc.string({ maxLength: 70 }),
);
/** A method whose request is an order id alone. */
const byOrderId = <Res>(
  participant: ParticipantName,
  def: MethodDefinition<{ orderId: string }, Res>,
  write: boolean,
  check: Rpc<{ orderId: string }, Res>['check'],
) => rpc({ participant, def, write, valid: (req) => isOrderId(req.orderId), check, request: fc.record({ orderId }) });

/** A page request of a List method: sizes in and out of range; tokens none, given out, or not. */
const pageToken = (id: string) => Buffer.from(`o1:${id}`).toString('base64url');
const pageRequest = fc.record({
  pageSize: fc.oneof(fc.constantFrom(0, 1, 2, 1_000, 1_001, -1, 2 ** 31 - 1, -(2 ** 31)), int32),
  pageToken: fc.oneof(
    { weight: 3, arbitrary: fc.constant('') },
    { weight: 2, arbitrary: orderId.map(pageToken) },
    { weight: 1, arbitrary: fc.string({ maxLength: 80 }) },
  ),
});
/** The keyset token rule (src/services/shared/paging.ts), written out again. */
const tokenOk = (t: string) => {
  if (t === '') return true;
  if (!/^[A-Za-z0-9_-]{1,200}$/.test(t)) return false;
  const d = Buffer.from(t, 'base64url').toString();
  return d.startsWith('o1:') && isOrderId(d.slice(3));
};
/** A read of a participant's books, a page at a time: read-only, ids in strict order, at most a page. */
const listRpc = <
  Req extends { pageSize: number; pageToken: string },
  Res extends { entries: Array<{ orderId: string }>; nextPageToken: string },
>(
  participant: ParticipantName,
  def: MethodDefinition<Req, Res>,
) =>
  rpc<Req, Res>({
    participant,
    def,
    write: false,
    valid: (req) => inRange(req.pageSize, 0, 1_000) && tokenOk(req.pageToken),
    check(res, req, before, after, what) {
      const ids = res.entries.map((e) => e.orderId);
      assert.ok(ids.length <= (req.pageSize || 500), 'at most a page');
      assert.ok(
        ids.every((id, i) => isOrderId(id) && (i === 0 || id > (ids[i - 1] as string))),
        'order ids, in strict order',
      );
      if (req.pageToken !== '')
        assert.ok(
          ids.every((id) => id > Buffer.from(req.pageToken, 'base64url').toString().slice(3)),
          'after the token',
        );
      assertUnchanged(before, after, [...before.keys()], what);
    },
    // The generated request types are these two fields and nothing else.
    request: pageRequest as fc.Arbitrary<unknown> as fc.Arbitrary<Req>,
  });

/** An outcome (or status) the enum defines, other than UNSPECIFIED (0) and ts-proto's UNRECOGNIZED (-1). */
const known = (value: number, values: object) =>
  assert.ok(value > 0 && Object.values(values).includes(value), `outcome ${value}`);
const orderOf = (res: { order?: { id: string } | undefined }, req: { orderId: string }) => {
  if (res.order !== undefined) assert.equal(res.order.id, req.orderId);
};

const RPCS: Array<Rpc<unknown, unknown>> = [
  rpc({
    participant: 'order',
    def: OrderServiceService.createOrder,
    write: true,
    valid: validCreate,
    check(res, req, before, after, what) {
      known(res.outcome, CreateOutcome);
      orderOf(res, req);
      if (res.outcome === CreateOutcome.CREATE_OUTCOME_CONFLICT) assertUnchanged(before, after, ['order.orders'], what);
      else assert.ok(res.order, 'an order with CREATED or CANCELLED');
    },
    request: fc.record({
      orderId,
      customerId: fc.oneof(
        id(['cust_1', '~', 'c'.repeat(LIMITS.customerIdMax)]),
        fc.constant('c'.repeat(LIMITS.customerIdMax + 1)),
      ),
      items: lines(orderLine, { productId: 'prod_1', quantity: 1, unitPriceCents: 100 }),
      createdAtMs: int64(1_700_000_000_000),
    }),
  }),
  byOrderId('order', OrderServiceService.getOrder, false, (res, req) => assert.equal(res.order?.id, req.orderId)),
  byOrderId('order', OrderServiceService.confirmOrder, true, (res, req, before, after, what) => {
    known(res.outcome, ConfirmOutcome);
    orderOf(res, req);
    if (res.outcome === ConfirmOutcome.CONFIRM_OUTCOME_CONFIRMED)
      assert.equal(res.order?.status, OrderStatus.ORDER_STATUS_CONFIRMED);
    else assertUnchanged(before, after, ['order.orders', 'order.tombstones'], what);
  }),
  rpc({
    participant: 'order',
    def: OrderServiceService.cancelOrder,
    write: true,
    valid: (req) => isOrderId(req.orderId) && isReason(req.reason),
    check(res, req, before, after, what) {
      known(res.outcome, CancelOutcome);
      orderOf(res, req);
      if (res.outcome === CancelOutcome.CANCEL_OUTCOME_NOT_PENDING)
        assertUnchanged(before, after, ['order.orders', 'order.tombstones'], what);
    },
    request: fc.record({ orderId, reason }),
  }),
  rpc({
    participant: 'inventory',
    def: InventoryServiceService.reserve,
    write: true,
    valid: (req: ReserveRequest) => isOrderId(req.orderId) && linesOk(req.items, isStockLine),
    check(res, req, before, after, what) {
      known(res.outcome, ReserveOutcome);
      const asked = new Set(req.items.map((l) => l.productId));
      assert.ok(
        res.productIds.every((p) => asked.has(p)),
        'only products asked for',
      );
      if (res.outcome === ReserveOutcome.RESERVE_OUTCOME_UNKNOWN_PRODUCT) {
        assert.ok(
          res.productIds.length > 0 && res.productIds.every((p) => !Object.hasOwn(CATALOG, p)),
          'unknown products named',
        );
      }
      if (res.outcome !== ReserveOutcome.RESERVE_OUTCOME_RESERVED)
        assertUnchanged(before, after, ['inventory.products', 'inventory.reservations'], what);
    },
    request: fc.record({ orderId, items: lines(stockLine, { productId: 'prod_1', quantity: 1 }) }),
  }),
  byOrderId('inventory', InventoryServiceService.release, true, (res) => known(res.outcome, ReleaseOutcome)),
  byOrderId('inventory', InventoryServiceService.commit, true, (res) => known(res.outcome, CommitOutcome)),
  rpc({
    participant: 'inventory',
    def: InventoryServiceService.listProducts,
    write: false,
    // Any request lists the whole catalog; a product filter (if the request has one) is not judged here.
    valid: (req) => ((req as { productIds?: string[] }).productIds?.length ? 'either' : true),
    check(res) {
      const ids = res.products.map((p) => p.productId);
      assert.deepEqual(ids, [...new Set(ids)].sort(), 'each product once, in order');
      for (const p of res.products) {
        const initial = CATALOG[p.productId as keyof typeof CATALOG];
        assert.ok(initial !== undefined, `a product of the catalog: ${p.productId}`);
        assert.ok(p.available >= 0 && p.reserved >= 0 && p.sold >= 0);
        assert.equal(p.available + p.reserved + p.sold, initial, `${p.productId}: stock conserved`);
      }
    },
    // Whatever fields the request has, at their defaults.
    request: fc.constant(InventoryServiceService.listProducts.requestDeserialize(Buffer.alloc(0))),
  }),
  rpc({
    participant: 'payment',
    def: PaymentServiceService.charge,
    write: true,
    valid: (req: ChargeRequest) => isOrderId(req.orderId) && inRange(req.amountCents, 1, LIMITS.orderTotalMaxCents),
    check(res, req, before, after, what) {
      known(res.outcome, ChargeOutcome);
      if (res.outcome === ChargeOutcome.CHARGE_OUTCOME_DECLINED)
        assert.ok(req.amountCents > CHARGE_LIMIT_CENTS, 'declined only over the limit');
      if (
        res.outcome === ChargeOutcome.CHARGE_OUTCOME_CONFLICT ||
        res.outcome === ChargeOutcome.CHARGE_OUTCOME_REFUNDED
      ) {
        assertUnchanged(before, after, ['payment.payments', 'payment.tombstones'], what);
      }
    },
    request: fc.record({
      orderId,
      amountCents: int64(
        CHARGE_LIMIT_CENTS,
        CHARGE_LIMIT_CENTS + 1,
        LIMITS.orderTotalMaxCents,
        LIMITS.orderTotalMaxCents + 1,
      ),
    }),
  }),
  byOrderId('payment', PaymentServiceService.refund, true, (res) => {
    known(res.outcome, RefundOutcome);
    assert.ok(res.amountCents >= 0);
  }),
  byOrderId('payment', PaymentServiceService.getPayment, false, (res) => known(res.status, PaymentStatus)),
  listRpc('order', OrderServiceService.listOrders),
  listRpc('payment', PaymentServiceService.listPayments),
  listRpc('inventory', InventoryServiceService.listReservations),
];

// ---------------------------------------------------------------------------------------------
// Sending, and judging the answer.

/** A key the metadata carries: a fresh valid one (made unique when sent), or a hostile one. */
const FRESH = '<fresh>';
let fresh = 0;
const keyValue = fc.oneof(
  { weight: 4, arbitrary: fc.constant(FRESH) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '',
      ' ',
      'a b',
      ' lead',
      'trail ',
      '"',
      'k'.repeat(LIMITS.idempotencyKeyMax),
      'k'.repeat(LIMITS.idempotencyKeyMax + 1),
      'k'.repeat(20_000),
    ),
  },
  // grpc-js sends only printable ASCII in a text header (it refuses the rest before sending).
  { weight: 1, arbitrary: fc.string({ maxLength: 300 }).filter((s) => /^[ -~]*$/.test(s)) },
);
/** x-idempotency-key: absent, once, or given several times. */
const keys = fc.oneof(
  { weight: 1, arbitrary: fc.constant([] as string[]) },
  { weight: 6, arbitrary: fc.tuple(keyValue).map((k) => [...k]) },
  { weight: 1, arbitrary: fc.array(keyValue, { minLength: 2, maxLength: 3 }) },
);
/** Other metadata the services read or pass on, garbled. */
const otherMetadata = fc.dictionary(
  fc.constantFrom('x-request-id', 'traceparent', 'tracestate', 'x-error-code'),
  fc.oneof(
    fc.string({ maxLength: 200 }).filter((s) => /^[ -~]*$/.test(s)),
    fc.constant('00-ffffffffffffffffffffffffffffffff-ffffffffffffffff-ff'),
  ),
  { maxKeys: 2 },
);

interface Sent {
  rpc: Rpc<unknown, unknown>;
  bytes: Buffer;
  keys: string[];
  metadata: Record<string, string>;
  /** Over the transport's limits: RESOURCE_EXHAUSTED is then an acceptable refusal. */
  oversized?: boolean;
}

const show = (s: Sent, request: unknown) => {
  const body =
    request === undefined
      ? `bytes ${s.bytes.subarray(0, 40).toString('hex')}${s.bytes.length > 40 ? `…(${s.bytes.length})` : ''}`
      : JSON.stringify(request);
  return `${s.rpc.def.path} ${body.length > 300 ? `${body.slice(0, 300)}…` : body} keys=${JSON.stringify(s.keys.map((k) => (k.length > 40 ? `${k.slice(0, 40)}…(${k.length})` : k)))}`;
};

const identity = (b: Buffer) => b;

/** One call of raw bytes on a participant's channel, with the call's deadline. */
function callRaw(
  participant: ParticipantName,
  path: string,
  bytes: Buffer,
  md: Metadata,
): Promise<{ err: ServiceError | null; res: Buffer | undefined }> {
  return new Promise((resolve) => {
    raw[participant].makeUnaryRequest(
      path,
      identity,
      identity,
      bytes,
      md,
      { deadline: Date.now() + DEADLINE_MS },
      (err, res) => resolve({ err, res }),
    );
  });
}

/** The request as the server decodes it, or undefined when the bytes do not decode. */
function decoded(s: Sent): unknown {
  try {
    return s.rpc.def.requestDeserialize(s.bytes);
  } catch {
    return undefined;
  }
}

const REFUSALS = new Set<number>([status.INVALID_ARGUMENT, status.FAILED_PRECONDITION, status.NOT_FOUND]);

/** Sends `s` and judges the answer against the oracle and the databases. */
async function judge(s: Sent): Promise<void> {
  const keyValues = s.keys.map((k) => (k === FRESH ? `hostile-${fresh++}` : k));
  const request = decoded(s);
  // HTTP/2 drops a field value with whitespace at either end (RFC 9113 §8.2.1): the service never sees it.
  const received = keyValues.filter((k) => !/^[ \t]|[ \t]$/.test(k));
  const keyOk = !s.rpc.write || (received.length === 1 && isKey(received[0] as string));
  const valid = request === undefined ? false : keyOk && s.rpc.valid(request);
  const what = show(s, request);
  const md = new Metadata();
  for (const k of keyValues) md.add('x-idempotency-key', k);
  for (const [k, v] of Object.entries(s.metadata)) md.set(k, v);
  const before = snapshot();
  const { err, res } = await callRaw(s.rpc.participant, s.rpc.def.path, s.bytes, md);
  const after = snapshot();
  if (err === null) {
    assert.notEqual(valid, false, `OK for an invalid request: ${what}`);
    s.rpc.check(s.rpc.def.responseDeserialize(res as Buffer), request, before, after, what);
    return;
  }
  const code = err.metadata?.get('x-error-code')[0];
  assert.notEqual(err.code, status.DEADLINE_EXCEEDED, `no answer within ${DEADLINE_MS} ms: ${what}`);
  assert.ok(
    REFUSALS.has(err.code) || (s.oversized === true && err.code === status.RESOURCE_EXHAUSTED),
    `${status[err.code]} (${err.details}) is not a definite refusal: ${what}`,
  );
  assertUnchanged(before, after, [...before.keys()], `a refused ${what}`);
  if (valid === true) {
    // A valid request is refused only for what the database holds: its key used for another
    // request, or (a read) an order that does not exist.
    const why = `${status[err.code]}/${String(code)}`;
    assert.ok(
      why === 'FAILED_PRECONDITION/idempotency_key_reused' || why === 'NOT_FOUND/not_found',
      `${why} (${err.details}) for a valid ${what}`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Raw protobuf, for what the generated encoder will not write.

function varint(n: bigint): number[] {
  let v = BigInt.asUintN(64, n);
  const out: number[] = [];
  do {
    const b = Number(v & 0x7fn);
    v >>= 7n;
    out.push(v > 0n ? b | 0x80 : b);
  } while (v > 0n);
  return out;
}
const tag = (field: number, wireType: number) => varint(BigInt((field << 3) | wireType));
function double(x: number): number[] {
  const b = Buffer.alloc(8);
  b.writeDoubleLE(x);
  return [...b];
}

/**
 * Fields with another wire type than the schema's (a double, a float, a varint where a string
 * belongs, a length-delimited blob where a number belongs) or int64 varints beyond what a JS number
 * holds exactly, for the fields 1-4 every request here uses.
 */
const hostileField = fc.oneof(
  fc
    .tuple(fc.integer({ min: 1, max: 4 }), fc.constantFrom(1.5, Number.NaN, -0, Infinity, 1e300, -1e-300))
    .map(([f, x]) => [...tag(f, 1), ...double(x)]),
  fc
    .tuple(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 0, max: 0xffffffff }))
    .map(([f, x]) => [...tag(f, 5), x & 0xff, (x >>> 8) & 0xff, (x >>> 16) & 0xff, x >>> 24]),
  fc
    .tuple(
      fc.integer({ min: 1, max: 4 }),
      fc.constantFrom(1n, -1n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 63n - 1n, -(2n ** 63n), 2n ** 31n, -(2n ** 31n) - 1n),
    )
    .map(([f, x]) => [...tag(f, 0), ...varint(x)]),
  fc
    .tuple(fc.integer({ min: 1, max: 4 }), fc.uint8Array({ maxLength: 12 }))
    .map(([f, b]) => [...tag(f, 2), ...varint(BigInt(b.length)), ...b]),
);

/** Bytes for a method: garbage, a valid-looking encoding with garbage after it, or with hostile fields. */
const rawBytes = (r: Rpc<unknown, unknown>) =>
  fc.oneof(
    fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
    fc
      .tuple(r.request, fc.uint8Array({ minLength: 1, maxLength: 16 }))
      .map(([req, tail]) => Buffer.concat([r.def.requestSerialize(req), tail])),
    fc
      .tuple(r.request, fc.array(hostileField, { minLength: 1, maxLength: 3 }))
      .map(([req, fields]) => Buffer.concat([r.def.requestSerialize(req), Buffer.from(fields.flat())])),
    // A field's length claiming more bytes than follow.
    r.request.map((req) =>
      Buffer.concat([r.def.requestSerialize(req), Buffer.from([...tag(1, 2), ...varint(1000n), 1, 2, 3])]),
    ),
  );

const anyRpc = fc.constantFrom(...RPCS);
const sent = (bytes: (r: Rpc<unknown, unknown>) => fc.Arbitrary<Buffer>) =>
  anyRpc.chain((r) => fc.record({ rpc: fc.constant(r), bytes: bytes(r), keys, metadata: otherMetadata }));
const decodes = (s: Sent) => decoded(s) !== undefined;

// ---------------------------------------------------------------------------------------------

test('every method, nearly-valid and hostile requests: OK only when valid (and well-formed), else a definite refusal that stores nothing', async () => {
  await fc.assert(
    fc.asyncProperty(
      sent((r) => r.request.map((req) => r.def.requestSerialize(req))),
      (s) => judge(s),
    ),
    { numRuns: 500, includeErrorInReport: true },
  );
});

test('every method, raw bytes that decode (wrong wire types, trailing fields, garbage that parses): judged as the request they decode to', async () => {
  await fc.assert(
    fc.asyncProperty(sent(rawBytes).filter(decodes), (s) => judge(s)),
    { numRuns: 250, includeErrorInReport: true },
  );
});

test('every method, bytes that do not decode (not protobuf, truncated, an int64 beyond 2^53): INVALID_ARGUMENT, nothing stored', async () => {
  await fc.assert(
    fc.asyncProperty(
      sent(rawBytes).filter((s) => !decodes(s)),
      (s) => judge(s),
    ),
    { numRuns: 100, includeErrorInReport: true },
  );
});

test('refuseUndecodable: a request that does not decode reaches no handler and is refused with INVALID_ARGUMENT', async () => {
  const bound = refuseUndecodable({ definition: PaymentServiceService, implementation: services.payment });
  const { requestDeserialize } = bound.definition.charge as MethodDefinition<unknown, unknown>;
  const charge = bound.implementation.charge as handleUnaryCall<unknown, ChargeResponse>;
  const before = snapshot();
  for (const bytes of [
    Buffer.from([0xff, 0xff, 0xff]),
    Buffer.from([...tag(2, 0), ...varint(2n ** 53n + 1n)]),
    Buffer.from([...tag(1, 2), 50, 1]),
  ]) {
    const refused = invoke(charge, requestDeserialize(bytes), `undecodable:${bytes.toString('hex')}`);
    await assert.rejects(refused, (err: ServiceError) => err.code === status.INVALID_ARGUMENT);
    assert.equal(await errorCode(refused), 'invalid_argument');
  }
  assertUnchanged(before, snapshot(), [...before.keys()], 'undecodable charges');
  // What decodes goes to the service as before.
  const bytes = PaymentServiceService.charge.requestSerialize({ orderId: 'decodable-1', amountCents: 5 });
  assert.equal(
    (await invoke(charge, requestDeserialize(bytes), 'decodable-1:charge')).outcome,
    ChargeOutcome.CHARGE_OUTCOME_CHARGED,
  );
});

test('over the limits: a message over 4 MiB, a flood of metadata, an unknown method — refused, nothing stored, and the services answer after', async () => {
  const rpcOf = (def: { path: string }) => RPCS.find((r) => r.def.path === def.path) as Rpc<unknown, unknown>;
  const create = rpcOf(OrderServiceService.createOrder);
  const reserve = rpcOf(InventoryServiceService.reserve);
  const line = { productId: 'prod_1', quantity: 1 };
  const cases: Sent[] = [
    {
      rpc: create,
      bytes: create.def.requestSerialize({
        orderId: 'big-1',
        customerId: 'c'.repeat(5 * 1024 * 1024),
        items: [],
        createdAtMs: 0,
      }),
      keys: [FRESH],
      metadata: {},
      oversized: true,
    },
    // 20 000 lines fit in a message, and are refused as too many.
    {
      rpc: reserve,
      bytes: reserve.def.requestSerialize({ orderId: 'big-2', items: Array.from({ length: 20_000 }, () => line) }),
      keys: [FRESH],
      metadata: {},
    },
    {
      rpc: reserve,
      bytes: reserve.def.requestSerialize({ orderId: 'big-3', items: [line] }),
      keys: Array.from({ length: 3_000 }, () => FRESH),
      metadata: {},
      oversized: true,
    },
  ];
  for (const s of cases) await judge(s);

  const before = snapshot();
  const unknown = await callRaw('order', '/order.v1.OrderService/DropTables', Buffer.from([1, 2, 3]), new Metadata());
  assert.equal(unknown.err?.code, status.UNIMPLEMENTED);
  assertUnchanged(before, snapshot(), [...before.keys()], 'an unknown method');

  // Still serving: a valid write on each participant succeeds.
  const valid: Array<[Rpc<unknown, unknown>, unknown]> = [
    [create, { orderId: 'after-1', customerId: 'cust_1', items: [{ ...line, unitPriceCents: 100 }], createdAtMs: 0 }],
    [reserve, { orderId: 'after-1', items: [line] }],
    [rpcOf(PaymentServiceService.charge), { orderId: 'after-1', amountCents: 100 }],
  ];
  for (const [r, req] of valid) {
    const md = new Metadata();
    md.set('x-idempotency-key', `after:${r.def.path}`);
    const { err } = await callRaw(r.participant, r.def.path, r.def.requestSerialize(req), md);
    assert.equal(err, null, `${r.def.path} answers after the hostile calls`);
  }
});

// ---------------------------------------------------------------------------------------------
// Who may call: every identity against every method.

interface Caller {
  name: string;
  /** Credentials presenting this caller's certificate, to reach `participant`. */
  creds(participant: ParticipantName): Promise<ChannelCredentials>;
  /** How a call is answered: served, refused by the TLS handshake (UNAVAILABLE), or by the caller's name (PERMISSION_DENIED). */
  expect: 'served' | 'handshake' | 'name';
}

test('every method, with a client certificate of every identity and of insiders and strangers: only the gateway is served, the rest are refused before anything is stored', async () => {
  const ours = mtlsDir(served.security);
  const stranger = loadTlsMaterial(mtlsDir(await foreignTls()), 'gateway');
  const insider = (cn: string) => mintCertificate(cn, 'clientAuth');
  const [mallory, orderAsClient, gatewayServing] = await Promise.all([
    insider('mallory'),
    insider('order'),
    mintCertificate('gateway', 'serverAuth'),
  ]);
  const callers: Caller[] = [
    { name: 'gateway', creds: async (p) => channelCredentials(served.security, 'gateway', p), expect: 'served' },
    // The participants' own certificates may only serve (serverAuth): the handshake refuses them as callers.
    ...(['order', 'inventory', 'payment'] as const).map((id): Caller => ({
      name: id,
      creds: () => callerCredentials(loadTlsMaterial(ours, id)),
      expect: 'handshake',
    })),
    // Certificates of our CA, for calling, under another name: refused by name.
    { name: 'CA-signed CN=mallory', creds: () => callerCredentials(mallory), expect: 'name' },
    { name: 'CA-signed CN=order (clientAuth)', creds: () => callerCredentials(orderAsClient), expect: 'name' },
    {
      name: 'CA-signed CN=gateway for serving only',
      creds: () => callerCredentials(gatewayServing),
      expect: 'handshake',
    },
    // The gateway's name, from another CA.
    { name: "another CA's CN=gateway", creds: () => callerCredentials(stranger), expect: 'handshake' },
  ];
  const healthCheck = HealthService.check as MethodDefinition<unknown, unknown>;
  /** A valid request of each method, for an order of its own: served, a write would store something. */
  const validRequest = (r: Rpc<unknown, unknown>, orderId: string): unknown => {
    const line = { productId: 'prod_1', quantity: 1 };
    const byName: Record<string, unknown> = {
      CreateOrder: { orderId, customerId: 'cust_1', items: [{ ...line, unitPriceCents: 100 }], createdAtMs: 0 },
      CancelOrder: { orderId, reason: 'payment_declined' },
      Reserve: { orderId, items: [line] },
      Charge: { orderId, amountCents: 100 },
      ListProducts: r.def.requestDeserialize(Buffer.alloc(0)),
    };
    const name = r.def.path.split('/').at(-1) as string;
    const req = byName[name] ?? (name.startsWith('List') ? { pageSize: 10, pageToken: '' } : { orderId });
    assert.equal(r.valid(req) === false, false, `a valid ${r.def.path}`);
    return req;
  };
  const methods = (caller: number): Array<{ participant: ParticipantName; path: string; bytes: Buffer }> => [
    ...RPCS.map((r) => ({
      participant: r.participant,
      path: r.def.path,
      bytes: r.def.requestSerialize(validRequest(r, `who-${caller}`)),
    })),
    ...(['order', 'inventory', 'payment'] as const).map((participant) => ({
      participant,
      path: healthCheck.path,
      bytes: healthCheck.requestSerialize({ service: '' }),
    })),
  ];
  for (const [i, caller] of callers.entries()) {
    const clients = new Map<ParticipantName, Client>();
    try {
      for (const m of methods(i)) {
        let client = clients.get(m.participant);
        if (!client) {
          client = new Client(
            served.addresses[m.participant],
            await caller.creds(m.participant),
            channelOptions(served.security, m.participant),
          );
          clients.set(m.participant, client);
        }
        const md = new Metadata();
        md.set('x-idempotency-key', `who-${fresh++}`);
        const what = `${caller.name} → ${m.path}`;
        const before = snapshot();
        const { err } = await new Promise<{ err: ServiceError | null }>((resolve) => {
          client.makeUnaryRequest(
            m.path,
            identity,
            identity,
            m.bytes,
            md,
            { deadline: Date.now() + DEADLINE_MS },
            (e) => resolve({ err: e }),
          );
        });
        if (caller.expect === 'served') {
          // Served: an answer, or a definite refusal of the request itself, never of the caller.
          assert.ok(
            err === null || REFUSALS.has(err.code),
            `${what}: ${err ? `${status[err.code]} ${err.details}` : 'OK'}`,
          );
          if (/\/(CreateOrder|Reserve|Charge|Check)$/.test(m.path)) assert.equal(err, null, `${what} is served`);
          continue;
        }
        assert.ok(err, `${what} was served`);
        assert.equal(
          err.code,
          caller.expect === 'name' ? status.PERMISSION_DENIED : status.UNAVAILABLE,
          `${what}: ${status[err.code]} ${err.details}`,
        );
        if (caller.expect === 'name') assert.equal(err.metadata.get('x-error-code')[0], 'caller_not_allowed', what);
        assertUnchanged(before, snapshot(), [...before.keys()], `a refused ${what}`);
      }
    } finally {
      for (const c of clients.values()) c.close();
    }
  }
});
