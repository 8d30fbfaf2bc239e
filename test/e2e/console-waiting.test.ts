/**
 * "Why hasn't this order moved?" in the console, in a real browser (Debian's chromium through
 * playwright-core), against a whole system: the payment service dies on its first Charge and
 * stays down, so the saga keeps retrying charge_payment. Its page says so in business words (the
 * attempt, the payment service unreachable, when the next attempt is due, the deadline), and once
 * it has made no progress for longer than SAGA_STUCK_AFTER (3 s here) the page and the saga list
 * flag it stuck, the list's "stuck only" filter shows it and nothing else, and the gateway's
 * saga_stuck gauge counts it.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { freshSystem, eventually } from '../helpers/system.js';
import { compiledEntries } from '../helpers/compiled.js';
import { armCrash } from '../helpers/crash.js';
import { CONSOLE_OUT as OUT, launchChromium, signIn, watchConsole } from '../helpers/console-browser.js';

const VIEWER_TOKEN = 'view-waiting-test-0123456789';
const WAIT = { timeout: 20_000 };

let sys: Awaited<ReturnType<typeof freshSystem>> | undefined;
let browser: Browser | undefined;
let launching: Promise<Browser> | undefined;
let admin = '';
let completed = '';
let wedged = '';
const problems: string[] = [];

interface Waiting {
  state: string;
  attempt: number;
  stuck: boolean;
  last_error: { kind: string; code: string | null } | null;
}

async function waitingOf(id: string): Promise<Waiting | null> {
  const r = await sys!.admin('GET', `/api/sagas/${id}/waiting`, undefined, { authorization: `Bearer ${VIEWER_TOKEN}` });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.waiting;
}

before(async () => {
  // The browser starts while the system starts and the saga is wedged.
  launching = launchChromium();
  sys = await freshSystem(
    {
      ADMIN_TOKENS: `victor:viewer:${VIEWER_TOKEN}`,
      SAGA_STUCK_AFTER: '3s',
      // Retried for long (a saga deadline far away), at most 1.5 s apart.
      SAGA_STEP_MAX_ATTEMPTS: '1000',
      SAGA_RETRY_INITIAL_BACKOFF_MS: '200',
      SAGA_RETRY_MAX_BACKOFF_MS: '1500',
      SAGA_DEADLINE_MS: '600000',
    },
    { entries: compiledEntries() },
  );
  assert.ok(sys.adminUrl);
  admin = sys.adminUrl;
  const done = await sys.api(
    'POST',
    '/orders',
    { customer_id: 'waiting_ok', items: [{ product_id: 'prod_1', quantity: 1, price: 10 }] },
    { Prefer: 'wait=10' },
  );
  assert.equal(done.body.status, 'CONFIRMED');
  completed = done.body.id;
  // The payment service dies on its first Charge (before committing it) and stays down. (Armed
  // where it runs, over its IPC channel, as a restart with CRASH_AT would arm it.)
  const armed = await armCrash(sys.procs.payment, 'payment.charge.before_commit');
  const placed = await sys.api('POST', '/orders', {
    customer_id: 'waiting_stuck',
    items: [{ product_id: 'prod_1', quantity: 1, price: 20 }],
  });
  assert.equal(placed.status, 201, JSON.stringify(placed.body));
  wedged = placed.body.id;
  assert.equal((await armed.exited).signal, 'SIGKILL');
  await eventually('charge_payment to be retried', async () => {
    const w = await waitingOf(wedged);
    return w?.state === 'retrying' && w.last_error?.kind === 'unreachable' ? true : undefined;
  });
  browser = await launching;
});

after(async () => {
  browser ??= await launching?.catch(() => undefined);
  await browser?.close();
  await sys?.stop();
});

async function page(): Promise<Page> {
  const ctx = await browser!.newContext({ viewport: { width: 1280, height: 800 }, baseURL: admin });
  const p = await ctx.newPage();
  watchConsole(p, admin, problems);
  await signIn(p, VIEWER_TOKEN, WAIT);
  return p;
}

const text = async (p: Page, testid: string) => ((await p.getByTestId(testid).textContent()) ?? '').trim();

test("a retrying saga's page says what it waits for and until when, then that it is stuck", async () => {
  const p = await page();
  await p.goto(`/#/sagas/${wedged}`);
  await p.locator('[data-testid="detail-status"]', { hasText: 'RUNNING' }).waitFor(WAIT);
  const sentence = p.locator('[data-testid="waiting-sentence"]', { hasText: 'payment service unreachable since' });
  await sentence.waitFor(WAIT);
  assert.match(
    await text(p, 'waiting-sentence'),
    /^charge_payment, attempt \d+ of 1000, payment service unreachable since \d\d:\d\d:\d\d UTC, /,
  );
  assert.match(await text(p, 'waiting-step'), /^charge_payment$/);
  assert.match(await text(p, 'waiting-attempt'), /^\d+ of 1000$/);
  assert.match(await text(p, 'waiting-participant'), /^payment service \(Charge\): unreachable \(grpc_unavailable\)$/);
  assert.match(await text(p, 'waiting-deadline'), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$/);
  // Between attempts the next one's time is shown (during a call, it is being made).
  await p.waitForFunction(
    () =>
      /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$/.test(
        document.querySelector('[data-testid="waiting-next"]')?.textContent ?? '',
      ),
    undefined,
    WAIT,
  );
  // No progress since reserve_stock's success: past 3 s, stuck (with time alone: no reload).
  await p.getByTestId('waiting-stuck').waitFor(WAIT);
  assert.match(await text(p, 'waiting-stuck'), /^stuck: no progress for \d+ s$/);
  assert.match(await text(p, 'waiting-sentence'), /Stuck: no progress for [\d.]+ s \(threshold 3 s\)\./);
  assert.equal(await p.getByTestId('waiting').getAttribute('data-stuck'), 'true');
  await p.screenshot({ path: `${OUT}waiting-detail.png`, fullPage: true });

  // A completed saga waits for nothing: no panel.
  await p.goto(`/#/sagas/${completed}`);
  await p.locator('[data-testid="detail-status"]', { hasText: 'COMPLETED' }).waitFor(WAIT);
  await p.getByTestId('waterfall-row').first().waitFor(WAIT);
  assert.equal(await p.getByTestId('waiting').isVisible(), false);
  await p.context().close();
});

test('the saga list flags the stuck saga, and "stuck only" shows it and nothing else', async () => {
  await eventually('the saga to be stuck', async () => ((await waitingOf(wedged))?.stuck ? true : undefined));
  const p = await page();
  const row = (id: string) => p.locator(`[data-testid="saga-row"][data-id="${id}"]`);
  await row(wedged).waitFor(WAIT);
  await row(completed).waitFor(WAIT);
  await row(wedged).getByTestId('saga-stuck').waitFor(WAIT);
  assert.equal(await row(wedged).getAttribute('data-stuck'), 'true');
  assert.equal(await row(completed).getByTestId('saga-stuck').count(), 0);
  await p.getByTestId('filter-stuck').check();
  await row(completed).waitFor({ state: 'detached', ...WAIT });
  const ids = await p.getByTestId('saga-row').evaluateAll((els) => els.map((el) => el.getAttribute('data-id')));
  assert.deepEqual(ids, [wedged]);
  await p.screenshot({ path: `${OUT}waiting-list-stuck.png`, fullPage: true });
  // Unticked: every saga again.
  await p.getByTestId('filter-stuck').uncheck();
  await row(completed).waitFor(WAIT);
  await p.context().close();
  assert.deepEqual(problems, []);
});

test('the gateway counts it in saga_stuck (read from the log at scrape time), the finished one not', async () => {
  const line = await eventually('saga_stuck to be 1', async () => {
    const r = await sys!.api('GET', '/metrics');
    const m = /^saga_stuck(?:\{[^}]*\})? (\d+)/m.exec(String(r.body));
    return m?.[1] === '1' ? m[0] : undefined;
  });
  assert.match(line, /^saga_stuck/);
});
