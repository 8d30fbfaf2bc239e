/**
 * The console's confirmation before an operator action (issue 26 item 3), in a real browser
 * (Debian's chromium through playwright-core) against a whole system: pressing an action's button
 * shows what the action would do (the engine's preview, read from the admin API, never the page's
 * guess), will and may marked; Cancel sends nothing; Confirm sends the action, which still works.
 * The saga is parked as in console-browser.test.ts: the inventory dies on the release that undoes
 * a declined order's reservation and stays down through every compensation attempt.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { freshSystem, eventually } from '../helpers/system.js';
import { compiledEntries } from '../helpers/compiled.js';
import { armCrash } from '../helpers/crash.js';
import { CONSOLE_OUT as OUT, launchChromium, signIn, watchConsole } from '../helpers/console-browser.js';

const OPERATOR_TOKEN = 'op-console-preview-0123456789';
const WAIT = { timeout: 20_000 };
const auth = { authorization: `Bearer ${OPERATOR_TOKEN}` };

let sys: Awaited<ReturnType<typeof freshSystem>> | undefined;
let browser: Browser | undefined;
let launching: Promise<Browser> | undefined;
let admin = '';
let parked = '';
const problems: string[] = [];

interface Preview {
  allowed: boolean;
  summary: string;
  effects: Array<{ step: string; certainty: 'will' | 'may'; effect: { words: string } }>;
  half_done: Array<{ step: string; state: string }> | null;
}

async function preview(id: string, action: string): Promise<Preview> {
  const r = await sys!.admin('GET', `/api/sagas/${id}/preview?action=${action}`, undefined, auth);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

async function sagaOf(id: string): Promise<{ status: string; events: Array<{ type: string }> }> {
  const r = await sys!.admin('GET', `/api/sagas/${id}`, undefined, auth);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

/** What the confirmation box shows: its summary and each effect's step, mark and words. */
async function shown(page: Page) {
  const box = page.getByTestId('action-preview');
  await box.getByTestId('preview-summary').waitFor(WAIT);
  return {
    summary: await box.getByTestId('preview-summary').textContent(),
    effects: await box.getByTestId('preview-effect').evaluateAll((els) =>
      els.map((el) => ({
        step: el.getAttribute('data-step'),
        certainty: el.getAttribute('data-certainty'),
        mark: el.querySelector('[data-testid="preview-certainty"]')?.textContent ?? null,
        words: el.querySelector('[data-testid="preview-words"]')?.textContent ?? null,
      })),
    ),
    halfDone: await box.getByTestId('preview-half-done').count(),
  };
}

const expected = (p: Preview) =>
  p.effects.map((e) => ({ step: e.step, certainty: e.certainty, mark: e.certainty, words: e.effect.words }));

before(async () => {
  // The browser starts while the system starts and the saga is parked.
  launching = launchChromium();
  sys = await freshSystem(
    {
      ADMIN_TOKENS: `alice:operator:${OPERATOR_TOKEN}`,
      SAGA_COMPENSATION_MAX_ATTEMPTS: '3',
      SAGA_COMPENSATION_MAX_BACKOFF_MS: '50',
    },
    { entries: compiledEntries() },
  );
  assert.ok(sys.adminUrl, 'the gateway reports its admin listener');
  admin = sys.adminUrl;
  // Armed where it runs, over its IPC channel, as a restart with CRASH_AT would arm it.
  const armed = await armCrash(sys.procs.inventory, 'inventory.release.before_commit');
  // Over PAYMENT_CHARGE_LIMIT_CENTS (500.00): declined, so its reservation is released... by a dead inventory.
  const placed = await sys.api('POST', '/orders', {
    customer_id: 'preview_parked',
    items: [{ product_id: 'prod_1', quantity: 2, price: 300 }],
  });
  assert.equal(placed.status, 201);
  parked = placed.body.id;
  assert.equal((await armed.exited).signal, 'SIGKILL');
  await eventually('the saga to park', async () => ((await sagaOf(parked)).status === 'PARKED' ? true : undefined));
  await sys.restart('inventory');
  browser = await launching;
});

after(async () => {
  browser ??= await launching?.catch(() => undefined);
  await browser?.close();
  await sys?.stop();
});

test('the confirmation shows the API preview of each action; Cancel sends nothing; Confirm compensates the saga', async () => {
  const ctx = await browser!.newContext({ viewport: { width: 1280, height: 800 }, baseURL: admin });
  const page = await ctx.newPage();
  watchConsole(page, admin, problems);
  await signIn(page, OPERATOR_TOKEN, WAIT);
  await page.goto(`/#/sagas/${parked}`);
  await page.locator('[data-testid="detail-status"]', { hasText: 'PARKED' }).waitFor(WAIT);

  // Compensate: the release and the cancel, both certain; the words are the engine's.
  const compensate = await preview(parked, 'compensate');
  assert.equal(compensate.summary, `Releases 2 × prod_1, cancels order ${parked}.`);
  await page.getByTestId('action-compensate').click();
  const c = await shown(page);
  assert.equal(c.summary, compensate.summary);
  assert.deepEqual(c.effects, expected(compensate));
  assert.deepEqual(
    c.effects.map((e) => `${e.certainty} ${e.step}`),
    ['will reserve_stock', 'will create_order'],
  );
  assert.equal(await page.getByTestId('action-confirm').getAttribute('data-action'), 'compensate');
  await page.screenshot({ path: `${OUT}/preview-compensate-1280x800.png`, fullPage: true });

  // Cancel: the box closes and nothing was sent.
  await page.getByTestId('action-cancel').click();
  await page.getByTestId('action-preview').waitFor({ state: 'hidden', ...WAIT });
  const still = await sagaOf(parked);
  assert.equal(still.status, 'PARKED');
  assert.equal(still.events.filter((e) => e.type === 'OPERATOR_ACTION').length, 0);

  // Retry: the stuck release again with a fresh budget, then the cancel.
  const retry = await preview(parked, 'retry');
  await page.getByTestId('action-retry').click();
  await page
    .locator('[data-testid="action-preview"][data-action="retry"] [data-testid="preview-summary"]')
    .waitFor(WAIT);
  const r = await shown(page);
  assert.equal(r.summary, retry.summary);
  assert.match(r.summary ?? '', /^Retries the undo of reserve_stock with a fresh budget: releases 2 × prod_1\./);
  assert.deepEqual(r.effects, expected(retry));

  // Resolve: nothing called, what is left half-done listed.
  const resolve = await preview(parked, 'resolve');
  await page.getByTestId('action-resolve').click();
  await page
    .locator('[data-testid="action-preview"][data-action="resolve"] [data-testid="preview-summary"]')
    .waitFor(WAIT);
  const v = await shown(page);
  assert.equal(v.summary, resolve.summary);
  assert.deepEqual(v.effects, []);
  assert.equal(v.halfDone, resolve.half_done?.length);
  assert.ok(v.halfDone > 0);

  // Compensate, confirmed from the keyboard (the confirmation has the focus): the saga compensates.
  await page.getByTestId('action-compensate').click();
  await page
    .locator('[data-testid="action-preview"][data-action="compensate"] [data-testid="action-confirm"]')
    .waitFor(WAIT);
  assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('data-testid')), 'action-confirm');
  await page.keyboard.press('Enter');
  await page.locator('[data-testid="detail-status"]', { hasText: 'COMPENSATED' }).waitFor(WAIT);
  const op = page.getByTestId('operator-action');
  await op.waitFor(WAIT);
  assert.equal(await op.getAttribute('data-action'), 'compensate');
  assert.equal((await sys!.api('GET', `/orders/${parked}`)).body.status, 'CANCELLED');
  assert.equal(await page.getByTestId('action-preview').isVisible(), false);
  await ctx.close();
});

test('no console errors or page errors', () => {
  assert.deepEqual(problems, []);
});
