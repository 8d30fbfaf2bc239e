/**
 * `sagas reconcile` end to end on a real system (four processes, mutual TLS, SQLite files): the
 * books of every kind of order agree (exit 0), read page by page with pages far smaller than the
 * books; then a confirmed order is refunded at the payment service directly, behind the saga's
 * back (through a gRPC client with the gateway's certificate and a fresh idempotency key), and
 * reconcile (the command, the admin route and the invariant checker the tests use) names it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { freshSystem } from '../helpers/system.js';
import { checkInvariants } from '../helpers/invariants.js';
import { mtlsDir, testTls } from '../helpers/tls.js';
import { connectParticipants, type Participants } from '../../src/gateway/participants.js';
import { dialableAddr } from '../../src/supervisor/supervisor.js';
import { callRpc } from '../../src/platform/grpc/grpc.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const DEFAULT_STOCK = { prod_1: 15, prod_2: 10, prod_3: 0 };

let sys: Awaited<ReturnType<typeof freshSystem>>;
let participants: Participants;

before(async () => {
  sys = await freshSystem();
  participants = connectParticipants(
    {
      order: dialableAddr(sys.addresses.order),
      inventory: dialableAddr(sys.addresses.inventory),
      payment: dialableAddr(sys.addresses.payment),
    },
    { kind: 'mtls', dir: mtlsDir(await testTls()) },
  );
});
after(async () => {
  participants?.close();
  await sys?.stop();
});

/** `sagas reconcile …` as an operator runs it: the real command, in its own process. */
async function sagas(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [path.join(ROOT, 'bin/sagas.js'), ...args], {
      cwd: ROOT,
      env: { ...process.env, SAGAS_ADMIN_URL: sys.adminUrl, SAGAS_ADMIN_TOKEN: '' },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

const order = (items: Array<[string, number, number]>, key: string) =>
  sys.api(
    'POST',
    '/orders',
    {
      customer_id: 'cust_books',
      items: items.map(([product_id, quantity, price]) => ({ product_id, quantity, price })),
    },
    { 'x-idempotency-key': key, prefer: 'wait=10' },
  );

test(
  "the books of every kind of order agree, read in pages of two; a refund behind the saga's back is named",
  { timeout: 120_000 },
  async () => {
    const completed: string[] = [];
    for (const [i, items] of [
      [
        ['prod_1', 2, 50],
        ['prod_2', 1, 30],
      ],
      [['prod_1', 1, 10]],
      [['prod_2', 3, 5]],
    ].entries()) {
      const r = await order(items as Array<[string, number, number]>, `books-ok-${i}`);
      assert.equal(r.body.status, 'CONFIRMED', JSON.stringify(r.body));
      completed.push(r.body.id as string);
    }
    assert.equal((await order([['prod_1', 1, 600]], 'books-declined')).body.reason, 'payment_declined');
    assert.equal((await order([['prod_3', 1, 1]], 'books-no-stock')).body.reason, 'insufficient_stock');

    const agree = await sagas('reconcile', '--settled');
    assert.equal(agree.code, 0, agree.stderr);
    assert.equal(
      agree.stdout,
      'the books agree: 5 sagas, 5 orders, 4 payments, 4 reservations, 3 products (COMPLETED 3, COMPENSATED 2)\n',
    );

    const whole = await sys.admin('GET', '/api/reconcile?settled=1');
    const paged = await sys.admin('GET', '/api/reconcile?settled=1&page_size=2');
    assert.equal(whole.status, 200);
    assert.deepEqual(paged.body, whole.body, 'pages of two read the same books');
    assert.deepEqual(whole.body.disagreements, []);
    await checkInvariants(sys, DEFAULT_STOCK);

    // Behind the saga's back: the payment service refunds a confirmed order, under a key of its own.
    const victim = completed[0] as string;
    const refund = await callRpc(
      participants.payment,
      'refund',
      { orderId: victim },
      { idempotencyKey: `by-hand:${victim}`, timeoutMs: 5_000 },
    );
    assert.equal(refund.amountCents, 13_000);

    const disagree = await sagas('reconcile', '--settled', '--page-size', '2');
    assert.equal(disagree.code, 1, disagree.stderr);
    assert.match(disagree.stdout, /^the books disagree: 1 disagreement\(s\) in 5 sagas/);
    assert.match(disagree.stdout, /\na confirmed order whose payment was refunded \(refund_on_confirmed_order\): 1\n/);
    assert.ok(
      disagree.stdout.includes(`  - order ${victim} is CONFIRMED but its payment of $130.00 was refunded\n`),
      disagree.stdout,
    );

    const asJson = await sagas('reconcile', '--json');
    assert.equal(asJson.code, 1);
    const body = JSON.parse(asJson.stdout);
    assert.equal(body.ok, false);
    assert.deepEqual(
      body.disagreements.map((d: { kind: string; order_id: string }) => [d.kind, d.order_id]),
      [['refund_on_confirmed_order', victim]],
    );

    // The tests' invariant checker reads the same books, and fails on them.
    await assert.rejects(checkInvariants(sys, DEFAULT_STOCK), (err: Error) =>
      err.message.includes(`refund_on_confirmed_order: order ${victim} is CONFIRMED`),
    );
  },
);
