/**
 * The console's fault switchboard page and the timeline's fault marks (issue 13, parts 1 and 3),
 * in a real browser (Debian's chromium through playwright-core, as console-browser.test.ts),
 * against a whole system started with FAULTS_ENABLED=1 (every process) and an operator and a
 * viewer token. The operator adds an `error` rule on reserve_stock from the form, an order is
 * compensated, its detail marks the refused attempt with the rule, the rule's fired count goes to 1
 * without a reload; switched off, the next order confirms. A viewer reads only. A screenshot of
 * the page goes to test-output/console/ (git-ignored).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { freshSystem, eventually } from '../helpers/system.js';
import { compiledEntries } from '../helpers/compiled.js';
import {
  CONSOLE_OUT as OUT,
  csrfOf,
  launchChromium,
  overflow,
  signIn as signInAs,
  watchConsole,
} from '../helpers/console-browser.js';

const OPERATOR_TOKEN = 'op-faults-test-0123456789';
const VIEWER_TOKEN = 'view-faults-test-0123456789';
const WAIT = { timeout: 15_000 };

let sys: Awaited<ReturnType<typeof freshSystem>> | undefined;
let browser: Browser | undefined;
let admin = '';
const problems: string[] = [];
/** The 400s of PUT /api/faults the test provokes with a bad rule (the browser logs each). */
let refusals = 0;
const bearer = { authorization: `Bearer ${OPERATOR_TOKEN}` };

/** A context whose console is watched; the 400 of a bad rule's PUT /api/faults is expected (counted: the test makes one). */
async function newContext(viewport = { width: 1280, height: 800 }): Promise<{ ctx: BrowserContext; page: Page }> {
  const ctx = await browser!.newContext({ viewport, baseURL: admin });
  const page = await ctx.newPage();
  watchConsole(page, admin, problems, (m, path) => {
    if (m.type() !== 'error' || !/status of 400/.test(m.text()) || path !== '/api/faults') return false;
    refusals += 1;
    return true;
  });
  return { ctx, page };
}

const signIn = (page: Page, token: string) => signInAs(page, token, WAIT);

async function order(customer: string) {
  const r = await sys!.api(
    'POST',
    '/orders',
    { customer_id: customer, items: [{ product_id: 'prod_1', quantity: 1, price: 10 }] },
    { Prefer: 'wait=10' },
  );
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body as { id: string; status: string };
}

before(async () => {
  const plan = fs.mkdtempSync(`${fs.realpathSync('/tmp')}/faults-plan-`);
  const file = `${plan}/plan.json`;
  // One rule from FAULTS_FILE, off: the page lists the plan the gateway started with.
  fs.writeFileSync(
    file,
    JSON.stringify({
      rules: [
        {
          id: 'slow-payment',
          target: { step: 'charge_payment' },
          kind: 'latency',
          latency_ms: 50,
          jitter_ms: 10,
          probability: 0.5,
          enabled: false,
        },
      ],
    }),
  );
  [sys, browser] = await Promise.all([
    freshSystem(
      {
        FAULTS_ENABLED: '1',
        FAULTS_FILE: file,
        ADMIN_TOKENS: `olga:operator:${OPERATOR_TOKEN},vic:viewer:${VIEWER_TOKEN}`,
      },
      { entries: compiledEntries() },
    ),
    launchChromium(),
  ]);
  assert.ok(sys.adminUrl, 'the gateway reports its admin listener');
  admin = sys.adminUrl;
});

after(async () => {
  await browser?.close();
  await sys?.stop();
});

test(
  'an operator adds an error rule from the Faults page, sees it fire and mark the timeline, switches it off',
  { timeout: 60_000 },
  async () => {
    const { ctx, page } = await newContext();
    await signIn(page, OPERATOR_TOKEN);
    // The link shows because the switchboard answers; the page lists the plan from FAULTS_FILE.
    await page.getByTestId('nav-faults').click();
    await page.getByTestId('faults-view').waitFor(WAIT);
    const slow = page.locator('[data-testid="fault-row"][data-id="slow-payment"]');
    await slow.waitFor(WAIT);
    assert.equal(await slow.getByTestId('fault-kind').textContent(), 'latency');
    assert.equal(await slow.getByTestId('fault-target').textContent(), 'step charge_payment');
    assert.equal(await slow.getByTestId('fault-params').textContent(), '50 ms + up to 10 ms');
    assert.equal(await slow.getByTestId('fault-probability').textContent(), '50 %');
    assert.equal(await slow.getByTestId('fault-toggle').getAttribute('aria-checked'), 'false');

    // The form's choices are the server's vocabulary, not lists of the page's own.
    const { vocabulary } = (await sys!.admin('GET', '/api/faults', undefined, bearer)).body;
    assert.ok(vocabulary, 'GET /api/faults sends its vocabulary');
    const options = (label: string) =>
      page
        .getByLabel(label, { exact: true })
        .locator('option')
        .evaluateAll((els) => els.map((el) => (el as HTMLOptionElement).value));
    assert.deepEqual(await options('Kind'), vocabulary.kinds);
    assert.deepEqual(await options('Step'), ['', ...vocabulary.steps]);
    assert.deepEqual(await options('Participant'), ['', ...vocabulary.participants]);
    assert.deepEqual(await options('Phase'), ['', ...vocabulary.phases]);
    assert.deepEqual(await options('Crash point'), ['', ...vocabulary.crash_points]);
    assert.ok(vocabulary.steps.includes('reserve_stock') && vocabulary.kinds.includes('error'));
    // The methods offered follow the participant chosen.
    await page.getByLabel('Participant', { exact: true }).selectOption('payment');
    const methods = await page
      .locator('#fault-methods option')
      .evaluateAll((els) => els.map((el) => (el as HTMLOptionElement).value));
    assert.deepEqual(
      methods,
      vocabulary.calls
        .filter((c: { participant: string }) => c.participant === 'payment')
        .map((c: { method: string }) => c.method),
    );
    await page.getByLabel('Participant', { exact: true }).selectOption('');

    // A bad rule: the server's 400 is shown, the plan unchanged.
    await page.getByLabel('Rule id').fill('too-slow');
    await page.getByLabel('Kind').selectOption('latency');
    await page.getByTestId('fault-add').click();
    const formError = page.getByTestId('fault-form-error');
    await formError.waitFor(WAIT);
    assert.match((await formError.textContent()) ?? '', /too-slow.*latency_ms is required.*invalid_fault_plan/);
    assert.equal(await page.getByTestId('fault-row').count(), 1);

    // An error rule on reserve_stock, from the keyboard.
    await page.getByLabel('Rule id').fill('refuse-reserve');
    await page.getByLabel('Kind').selectOption('error');
    await page.getByLabel('Step', { exact: true }).selectOption('reserve_stock');
    await page.getByLabel('Phase').selectOption('action');
    await page.getByLabel('Rule id').press('Enter');
    const rule = page.locator('[data-testid="fault-row"][data-id="refuse-reserve"]');
    await rule.waitFor(WAIT);
    assert.equal(await formError.isVisible(), false);
    assert.equal(await rule.getByTestId('fault-toggle').getAttribute('aria-checked'), 'true');
    assert.equal(await rule.getByTestId('fault-fired').textContent(), '0');
    const plan = await sys!.admin('GET', '/api/faults', undefined, bearer);
    assert.deepEqual(
      plan.body.rules.map((r: { id: string }) => r.id),
      ['slow-payment', 'refuse-reserve'],
    );
    assert.deepEqual(plan.body.rules[1], {
      id: 'refuse-reserve',
      enabled: true,
      target: { step: 'reserve_stock' },
      phase: 'action',
      kind: 'error',
      probability: 1,
      fired: 0,
    });

    // An order: reserve_stock refused by the rule, the saga compensated; the count updates live.
    const refused = await order('faults_refused');
    assert.equal(refused.status, 'CANCELLED');
    await rule.locator('[data-testid="fault-fired"]', { hasText: '1' }).waitFor(WAIT);
    await page.screenshot({ path: `${OUT}/faults-1280x800.png`, fullPage: true });

    // At phone width the page fits.
    await page.setViewportSize({ width: 375, height: 800 });
    assert.equal(await overflow(page), 0, 'faults at 375 px');
    await page.screenshot({ path: `${OUT}/faults-375.png`, fullPage: true });
    await page.setViewportSize({ width: 1280, height: 800 });

    // Its detail: the reserve_stock attempt carries the fault badge naming the rule, in the waterfall and the events.
    await page.goto(`/#/sagas/${refused.id}`);
    await page.locator('[data-testid="detail-status"]', { hasText: 'COMPENSATED' }).waitFor(WAIT);
    const attempt = page.locator('[data-testid="waterfall-row"][data-step="reserve_stock"][data-phase="action"]');
    await attempt.waitFor(WAIT);
    assert.equal(await attempt.getAttribute('data-outcome'), 'failed');
    assert.equal(await attempt.getByTestId('wf-fault').textContent(), 'fault refuse-reserve');
    assert.equal(await page.getByTestId('wf-fault').count(), 1, 'only the refused attempt is marked');
    const failed = page.locator('[data-testid="event-row"][data-type="STEP_FAILED"]');
    assert.equal(await failed.getByTestId('event-fault').textContent(), 'fault refuse-reserve');
    assert.equal(await page.getByTestId('event-fault').count(), 1, "only the refused attempt's event is marked");
    assert.match((await page.getByTestId('detail-failure').textContent()) ?? '', /fault_injected at reserve_stock/);
    // What the badge reads: the engine records the rule in the STEP_FAILED's data (fault_rule), and
    // the admin API says so in fields (injected, fault_rule) — the page reads no error text.
    const t = await sys!.admin('GET', `/api/sagas/${refused.id}`, undefined, bearer);
    const event = t.body.events.find((e: { type: string }) => e.type === 'STEP_FAILED');
    assert.equal(event.step, 'reserve_stock');
    assert.match(event.error, /^fault injected by rule refuse-reserve: reserve_stock refused$/);
    assert.deepEqual(event.data, { code: 'fault_injected', fault_rule: 'refuse-reserve' });
    assert.deepEqual([event.attempt, event.injected, event.fault_rule], [1, true, 'refuse-reserve']);
    assert.equal(event.idempotency_key, `${refused.id}:reserve_stock`);
    const injected = t.body.events.filter((e: { injected: boolean }) => e.injected);
    assert.deepEqual(
      injected.map((e: { seq: number }) => e.seq),
      [event.seq],
      'only that event is injected',
    );
    assert.equal(await failed.getAttribute('data-fault'), event.fault_rule);
    await page.screenshot({ path: `${OUT}/fault-detail-1280x800.png`, fullPage: true });

    // Switched off from the page (the keyboard: focus, Space): the next order confirms; the count stays.
    await page.getByTestId('nav-faults').click();
    await rule.waitFor(WAIT);
    await rule.getByTestId('fault-toggle').focus();
    await page.keyboard.press('Space');
    await rule.locator('[data-testid="fault-toggle"][aria-checked="false"]').waitFor(WAIT);
    assert.equal(
      await rule.getByTestId('fault-toggle').evaluate((el) => el === document.activeElement),
      true,
      'the focus stays on the toggle',
    );
    const confirmed = await order('faults_confirmed');
    assert.equal(confirmed.status, 'CONFIRMED');
    await eventually('the plan to show the rule off', async () => {
      const r = await sys!.admin('GET', '/api/faults', undefined, bearer);
      return r.body.rules[1].enabled === false && r.body.rules[1].fired === 1 ? true : undefined;
    });
    assert.equal(await rule.getByTestId('fault-fired').textContent(), '1');

    // Remove it (a PUT of the plan without it).
    await rule.getByTestId('fault-remove').click();
    await rule.waitFor({ state: 'detached', ...WAIT });
    assert.deepEqual(
      (await sys!.admin('GET', '/api/faults', undefined, bearer)).body.rules.map((r: { id: string }) => r.id),
      ['slow-payment'],
    );
    await ctx.close();
  },
);

test('a viewer sees the switchboard read-only, and a forced change is 403', async () => {
  const { ctx, page } = await newContext();
  await signIn(page, VIEWER_TOKEN);
  await page.getByTestId('nav-faults').click();
  const slow = page.locator('[data-testid="fault-row"][data-id="slow-payment"]');
  await slow.waitFor(WAIT);
  assert.equal(await slow.getByTestId('fault-state').textContent(), 'off');
  assert.equal(await page.getByTestId('fault-toggle').count(), 0);
  assert.equal(await page.getByTestId('fault-remove').count(), 0);
  assert.equal(await page.getByTestId('fault-form').count(), 0);
  await page.getByTestId('faults-read-only').waitFor(WAIT);

  // The request context sends the cookie; the token is the page's (given by its sign-in).
  const headers = { 'x-csrf-token': await csrfOf(page) };
  const session = await (await ctx.request.get('/api/session', { headers })).json();
  assert.equal(session.role, 'viewer');
  const put = await ctx.request.put('/api/faults', { headers, data: { rules: [] } });
  assert.equal(put.status(), 403);
  assert.equal((await put.json()).error, 'forbidden');
  const toggle = await ctx.request.post('/api/faults/slow-payment', { headers, data: { enabled: true } });
  assert.equal(toggle.status(), 403);
  assert.equal((await sys!.admin('GET', '/api/faults', undefined, bearer)).body.rules.length, 1);
  await ctx.close();
});

test('no console errors or page errors', () => {
  assert.deepEqual(problems, []);
  assert.equal(refusals, 1, 'the one bad rule the test sent');
});
