/**
 * The operator console in a real browser (issue 12 part 5): Debian's chromium driven by
 * playwright-core (no browser download; .ci/run installs chromium when it is missing), against a
 * whole system started with the test helpers and its admin listener. Screenshots of the list and
 * of a detail at 1280×800 go to test-output/console/ (git-ignored).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { freshSystem, eventually } from '../helpers/system.js';
import { compiledEntries } from '../helpers/compiled.js';
import { armCrash } from '../helpers/crash.js';
import {
  CONSOLE_OUT as OUT,
  csrfOf,
  launchChromium,
  overflow,
  signIn as signInAs,
  watchConsole,
} from '../helpers/console-browser.js';

const OPERATOR_TOKEN = 'op-console-test-0123456789';
const VIEWER_TOKEN = 'view-console-test-0123456789';
const WAIT = { timeout: 20_000 };

let sys: Awaited<ReturnType<typeof freshSystem>> | undefined;
let browser: Browser | undefined;
let launching: Promise<Browser> | undefined;
let admin = '';
/** The sagas this file made: three completed, one declined (compensated), one parked. */
const made = { completed: [] as string[], declined: '', parked: '' };
/** What the pages said on their consoles that nobody expected. */
const problems: string[] = [];

interface TimelineEvent {
  seq: number;
  type: string;
  step: string | null;
  attempt: number | null;
  idempotency_key: string | null;
  injected: boolean;
  fault_rule: string | null;
}

interface Timeline {
  status: string;
  events: TimelineEvent[];
  allowed_actions: string[];
}

async function newContext(viewport = { width: 1280, height: 800 }): Promise<{ ctx: BrowserContext; page: Page }> {
  const ctx = await browser!.newContext({ viewport, baseURL: admin });
  const page = await ctx.newPage();
  watchConsole(page, admin, problems);
  return { ctx, page };
}

const signIn = (page: Page, token: string) => signInAs(page, token, WAIT);

async function timeline(id: string): Promise<Timeline> {
  const r = await sys!.admin('GET', `/api/sagas/${id}`, undefined, { authorization: `Bearer ${OPERATOR_TOKEN}` });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

/** The waterfall's rows as the page shows them, and as the API's events say they must be. */
async function waterfallMatches(page: Page, id: string) {
  const t = await timeline(id);
  const expected = t.events
    .filter((e) => e.type === 'STEP_STARTED' || e.type === 'COMPENSATION_STARTED')
    .map((e) => ({
      seq: String(e.seq),
      step: e.step,
      phase: e.type === 'STEP_STARTED' ? 'action' : 'compensation',
      attempt: String(e.attempt),
      key: e.idempotency_key,
    }));
  const rows = page.getByTestId('waterfall-row');
  await page.waitForFunction(
    (n) => document.querySelectorAll('[data-testid="waterfall-row"]').length === n,
    expected.length,
    WAIT,
  );
  const shown = await rows.evaluateAll((els) =>
    els.map((el) => ({
      seq: el.getAttribute('data-seq'),
      step: el.getAttribute('data-step'),
      phase: el.getAttribute('data-phase'),
      attempt: el.getAttribute('data-attempt'),
      key: el.querySelector('[data-testid="wf-key"]')?.textContent ?? null,
    })),
  );
  assert.deepEqual(shown, expected);
  // Nothing here was injected: no fault mark anywhere.
  assert.ok(t.events.every((e) => !e.injected && e.fault_rule === null));
  assert.equal(await page.locator('[data-fault]').count(), 0);
  return t;
}

/** The action buttons `scope` shows (their actions, in order): what the server's allowed_actions say. */
async function offered(scope: Page | Locator): Promise<string[]> {
  const buttons = scope.locator('button[data-testid^="action-"]:visible');
  return (await buttons.evaluateAll((els) => els.map((el) => el.getAttribute('data-testid')))).map((t) =>
    String(t).replace(/^action-/, ''),
  );
}

before(async () => {
  // The browser starts while the system starts and the sagas are made.
  launching = launchChromium();
  sys = await freshSystem(
    {
      ADMIN_TOKENS: `alice:operator:${OPERATOR_TOKEN},victor:viewer:${VIEWER_TOKEN}`,
      TRACE_URL_TEMPLATE: 'http://127.0.0.1:3000/explore?trace={trace_id}',
      SAGA_COMPENSATION_MAX_ATTEMPTS: '3',
      SAGA_COMPENSATION_MAX_BACKOFF_MS: '50',
    },
    { entries: compiledEntries() },
  );
  assert.ok(sys.adminUrl, 'the gateway reports its admin listener');
  admin = sys.adminUrl;
  const order = (price: number, customer: string) =>
    sys!.api(
      'POST',
      '/orders',
      { customer_id: customer, items: [{ product_id: 'prod_1', quantity: 1, price }] },
      { Prefer: 'wait=10' },
    );
  // In this order (the list is newest first): three confirmed, then one over
  // PAYMENT_CHARGE_LIMIT_CENTS (500.00), declined and compensated.
  for (let i = 0; i < 3; i++) {
    const r = await order(12.5, `console_c${i}`);
    assert.equal(r.body.status, 'CONFIRMED');
    made.completed.push(r.body.id);
  }
  const declined = await order(600, 'console_declined');
  assert.equal(declined.body.status, 'CANCELLED');
  made.declined = declined.body.id;
  // Parked as in parked.test.ts: the inventory dies on the release that undoes a declined
  // order's reservation and stays down through every compensation attempt; then it comes back.
  // (Armed where it runs, over its IPC channel, as a restart with CRASH_AT would arm it.)
  const armed = await armCrash(sys.procs.inventory, 'inventory.release.before_commit');
  const parked = await sys.api('POST', '/orders', {
    customer_id: 'console_parked',
    items: [{ product_id: 'prod_1', quantity: 1, price: 600 }],
  });
  assert.equal(parked.status, 201);
  made.parked = parked.body.id;
  assert.equal((await armed.exited).signal, 'SIGKILL');
  await eventually('the saga to park', async () =>
    (await timeline(made.parked)).status === 'PARKED' ? true : undefined,
  );
  await sys.restart('inventory');
  browser = await launching;
});

after(async () => {
  browser ??= await launching?.catch(() => undefined);
  await browser?.close();
  await sys?.stop();
});

test('no session: the console shows its sign-in page, and a wrong token is refused there', async () => {
  const { ctx, page } = await newContext();
  await page.goto('/');
  await page.getByTestId('sign-in-form').waitFor(WAIT);
  assert.equal(await page.getByTestId('nav').isVisible(), false);
  assert.equal(await page.getByTestId('saga-table').count(), 0);
  await page.getByLabel('Admin token').fill('not-a-token-of-this-gateway');
  await page.getByTestId('sign-in-submit').click();
  await page.getByTestId('sign-in-error').waitFor(WAIT);
  assert.equal(await page.getByTestId('sagas-view').count(), 0);
  // The API agrees: nothing without a session.
  const r = await ctx.request.get('/api/sagas');
  assert.equal(r.status(), 401);
  await ctx.close();
});

test('a viewer sees the parked saga but no action buttons, and a forced action is 403', async () => {
  const { ctx, page } = await newContext();
  await signIn(page, VIEWER_TOKEN);
  assert.equal(await page.getByTestId('who-role').textContent(), 'viewer');
  await page.goto(`/#/sagas/${made.parked}`);
  await page.locator('[data-testid="detail-status"]', { hasText: 'PARKED' }).waitFor(WAIT);
  await page.getByTestId('waterfall-row').first().waitFor(WAIT);
  assert.equal(await page.getByTestId('actions').count(), 0);
  assert.equal(await page.locator('[data-testid^="action-"]').count(), 0);
  await page.getByTestId('nav-parked').click();
  const row = page.locator(`[data-testid="parked-row"][data-id="${made.parked}"]`);
  await row.waitFor(WAIT);
  assert.match((await row.getByTestId('parked-reason').textContent()) ?? '', /payment_declined/);
  assert.equal(await page.getByTestId('actions').count(), 0);
  assert.equal(await page.getByRole('button', { name: 'Retry' }).count(), 0);

  // The cookie alone (what ctx.request sends) reads nothing; with the page's token, the role decides.
  const cookieOnly = await ctx.request.get('/api/session');
  assert.equal(cookieOnly.status(), 403);
  assert.equal((await cookieOnly.json()).error, 'csrf_rejected');
  const headers = { 'x-csrf-token': await csrfOf(page) };
  const session = await (await ctx.request.get('/api/session', { headers })).json();
  assert.deepEqual([session.role, session.via, session.csrf_token], ['viewer', 'session', null]);
  const forced = await ctx.request.post(`/api/sagas/${made.parked}/actions`, {
    headers,
    data: { action: 'retry', action_id: 'viewer-forced-1' },
  });
  assert.equal(forced.status(), 403);
  assert.equal((await forced.json()).error, 'forbidden');
  assert.equal((await timeline(made.parked)).status, 'PARKED');
  await ctx.close();
});

test('a signed-in console survives a reload, opens in a new tab without signing in again, and its tabs sign out and in together', async () => {
  const { ctx, page } = await newContext();
  await signIn(page, OPERATOR_TOKEN);
  await page.reload();
  await page.getByTestId('sagas-view').waitFor(WAIT);
  assert.equal(await page.getByTestId('who-name').textContent(), 'alice');
  assert.equal(await page.getByTestId('sign-out').isVisible(), true);
  // What the page asked on its reload: who it is, never the token.
  const asked = await page.evaluate(async () =>
    (
      await fetch('/api/session', { headers: { 'x-csrf-token': localStorage.getItem('sagas-console.csrf') ?? '' } })
    ).json(),
  );
  assert.deepEqual([asked.name, asked.via, asked.csrf_token], ['alice', 'session', null]);
  // A second tab (a saga opened with a middle click) finds the session and its token.
  const tab = await ctx.newPage();
  watchConsole(tab, admin, problems);
  await tab.goto(`/#/sagas/${made.parked}`);
  await tab.locator('[data-testid="detail-status"]', { hasText: 'PARKED' }).waitFor(WAIT);
  assert.equal(await tab.getByTestId('action-retry').isEnabled(), true);
  assert.deepEqual(await offered(tab), (await timeline(made.parked)).allowed_actions);
  assert.equal(await tab.getByTestId('sign-in-form').count(), 0);
  // Signing out in one tab signs the other out too (it hears the token go), and signing in again
  // in one brings the other back.
  await tab.getByTestId('sign-out').click();
  await tab.getByTestId('sign-in-form').waitFor(WAIT);
  await page.getByTestId('sign-in-form').waitFor(WAIT);
  await signIn(tab, VIEWER_TOKEN);
  await page.locator('[data-testid="who-role"]', { hasText: 'viewer' }).waitFor(WAIT);
  await page.getByTestId('sagas-view').waitFor(WAIT);
  await ctx.close();
});

test('a web server on another port of the host receives the session cookie, and can neither read the CSRF token nor act (review N2)', async () => {
  // The other port: it logs the cookies it is sent, and serves a page that tries the admin API from the browser.
  const cookies: string[] = [];
  const evil = http.createServer((req, res) => {
    if (req.headers.cookie) cookies.push(req.headers.cookie);
    res.setHeader('content-type', 'text/html');
    res.end(`<!doctype html><script>
      window.results = (async () => {
        const out = {};
        for (const [name, init] of Object.entries({
          session: { credentials: 'include' },
          act: { method: 'POST', credentials: 'include', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ action: 'retry', action_id: 'evil-page-1' }) },
          blind: { method: 'POST', mode: 'no-cors', credentials: 'include', headers: { 'content-type': 'text/plain' }, body: JSON.stringify({ action: 'retry', action_id: 'evil-page-2' }) },
        })) {
          const url = name === 'session' ? '${admin}/api/session' : '${admin}/api/sagas/${made.parked}/actions';
          try { const r = await fetch(url, init); out[name] = r.type === 'opaque' ? 'opaque' : await r.text(); } catch (e) { out[name] = 'failed: ' + e.message; }
        }
        return out;
      })();
    </script>`);
  });
  await new Promise<void>((r) => evil.listen(0, '127.0.0.1', r));
  const evilUrl = `http://127.0.0.1:${(evil.address() as AddressInfo).port}/`;
  try {
    const { ctx, page } = await newContext();
    await signIn(page, OPERATOR_TOKEN);
    const csrf = await csrfOf(page);
    const visit = await ctx.newPage();
    await visit.goto(evilUrl);
    const tried = await visit.evaluate(
      () => (window as unknown as { results: Promise<Record<string, string>> }).results,
    );
    // Cookies are not scoped by port: the other server got it...
    const stolen = cookies.map((c) => /sagas_session=[^;\s]+/.exec(c)?.[0]).find(Boolean);
    assert.ok(stolen, `the other port got no session cookie: ${cookies.join(' | ')}`);
    // ...but its page could read nothing (no CORS), and its requests were refused.
    for (const [name, outcome] of Object.entries(tried))
      assert.ok(outcome === 'opaque' || outcome.startsWith('failed'), `${name}: ${outcome}`);
    // Replayed from the server: no token to be had, no read, no action.
    const replays: Array<Record<string, string>> = [
      { cookie: stolen },
      { cookie: stolen, origin: new URL(admin).origin, 'sec-fetch-site': 'same-origin' },
    ];
    for (const headers of replays) {
      const who = await sys!.admin('GET', '/api/session', undefined, headers);
      assert.equal(who.status, 403, JSON.stringify(who.body));
      assert.equal(who.body.error, 'csrf_rejected');
      assert.ok(!JSON.stringify(who.body).includes(csrf));
      assert.equal((await sys!.admin('GET', '/api/sagas', undefined, headers)).status, 403);
      const act = await sys!.admin(
        'POST',
        `/api/sagas/${made.parked}/actions`,
        { action: 'retry', action_id: 'stolen-1' },
        headers,
      );
      assert.equal(act.status, 403, JSON.stringify(act.body));
    }
    const t = await timeline(made.parked);
    assert.equal(t.status, 'PARKED');
    assert.equal(t.events.filter((e) => e.type === 'OPERATOR_ACTION').length, 0, 'no operator action reached the saga');
    await ctx.close();
  } finally {
    evil.close();
  }
});

test('an operator signs in, sees the sagas, filters PARKED, reads a waterfall, retries a parked saga to COMPENSATED without a reload', async () => {
  const { ctx, page } = await newContext();
  await signIn(page, OPERATOR_TOKEN);
  assert.equal(await page.getByTestId('who-name').textContent(), 'alice');
  assert.equal(await page.getByTestId('who-role').textContent(), 'operator');

  // The list shows every saga of this test, newest first.
  const all = [...made.completed, made.declined, made.parked];
  await page.waitForFunction(
    (ids) => ids.every((id) => document.querySelector(`[data-testid="saga-row"][data-id="${id}"]`)),
    all,
    WAIT,
  );
  const order = await page.getByTestId('saga-row').evaluateAll((els) => els.map((el) => el.getAttribute('data-id')));
  assert.deepEqual(order.slice(0, all.length), [...all].reverse());
  await page.locator('[data-testid="count-PARKED"]', { hasText: '1' }).waitFor(WAIT);
  await page.getByTestId('overview').locator('[data-testid="ov-parked"]', { hasText: '1' }).waitFor(WAIT);
  await page.screenshot({ path: `${OUT}/list-1280x800.png` });

  // Search by saga (= order) id, from the keyboard.
  await page.getByLabel('Search').fill(made.declined);
  await page.keyboard.press('Enter');
  await page.waitForFunction(
    (id) => {
      const rows = [...document.querySelectorAll<HTMLElement>('[data-testid="saga-row"]')];
      return rows.length === 1 && rows[0]!.dataset.id === id;
    },
    made.declined,
    WAIT,
  );
  await page.getByLabel('Search').fill('');
  await page.keyboard.press('Enter');
  await page.locator(`[data-testid="saga-row"][data-id="${made.parked}"]`).waitFor(WAIT);

  // Filter PARKED: only the parked saga.
  await page.getByTestId('filter-PARKED').click();
  await page.waitForFunction(
    () => {
      const rows = [...document.querySelectorAll<HTMLElement>('[data-testid="saga-row"]')];
      return rows.length === 1 && rows[0]!.dataset.status === 'PARKED';
    },
    undefined,
    WAIT,
  );
  assert.equal(await page.getByTestId('saga-row').getAttribute('data-id'), made.parked);
  assert.equal(await page.getByTestId('filter-PARKED').getAttribute('aria-pressed'), 'true');

  // The PARKED queue offers, in each row, what the server allows (retry and resolve fit a row;
  // compensate is in the detail).
  await page.getByTestId('nav-parked').click();
  const parkedRow = page.locator(`[data-testid="parked-row"][data-id="${made.parked}"]`);
  await parkedRow.locator('[data-testid="action-retry"]:visible').waitFor(WAIT);
  const queue = (await sys!.admin('GET', '/api/parked', undefined, { authorization: `Bearer ${OPERATOR_TOKEN}` })).body
    .sagas as Array<{ id: string; allowed_actions: string[] }>;
  const allowed = queue.find((s) => s.id === made.parked)?.allowed_actions;
  assert.deepEqual(allowed, ['retry', 'compensate', 'resolve']);
  assert.deepEqual(await offered(parkedRow), ['retry', 'resolve']);
  // Back to the list: its filter stayed.
  await page.getByTestId('nav-sagas').click();
  await page.locator(`[data-testid="saga-row"][data-id="${made.parked}"]`).waitFor(WAIT);
  assert.equal(await page.getByTestId('filter-PARKED').getAttribute('aria-pressed'), 'true');

  // Its detail: the waterfall has one row per attempt of the API's timeline.
  await page.getByTestId('saga-link').focus();
  await page.keyboard.press('Enter');
  await page.waitForURL(`**/#/sagas/${made.parked}`);
  await page.locator('[data-testid="detail-status"]', { hasText: 'PARKED' }).waitFor(WAIT);
  const t = await waterfallMatches(page, made.parked);
  assert.equal(t.events.filter((e) => e.type === 'COMPENSATION_STARTED' && e.step === 'reserve_stock').length, 3);
  assert.match((await page.getByTestId('detail-failure').textContent()) ?? '', /payment_declined/);
  assert.equal(await page.getByTestId('detail-customer').textContent(), 'console_parked');
  assert.equal(await page.getByTestId('detail-total').textContent(), '$600.00');
  assert.match(
    (await page.getByTestId('trace-link').getAttribute('href')) ?? '',
    /^http:\/\/127\.0\.0\.1:3000\/explore\?trace=[0-9a-f]{32}$/,
  );
  const keys = await page.getByTestId('wf-key').allTextContents();
  assert.ok(
    keys.includes(`${made.parked}:reserve_stock:undo`) && keys.includes(`${made.parked}:charge_payment`),
    keys.join(' '),
  );
  // What the server allows: a PARKED saga is retried, compensated (it parked compensating: the
  // compensation resumes) or resolved; nothing is offered for a terminal one (below). The page
  // shows exactly the saga's allowed_actions.
  assert.deepEqual(t.allowed_actions, ['retry', 'compensate', 'resolve']);
  assert.deepEqual(await offered(page), t.allowed_actions);
  assert.equal(await page.getByTestId('action-retry').isEnabled(), true);
  assert.equal(await page.getByTestId('action-resolve').isEnabled(), true);
  assert.equal(await page.getByTestId('action-compensate').isEnabled(), true);
  await page.screenshot({ path: `${OUT}/detail-1280x800.png`, fullPage: true });

  // Retry (the inventory is back): the saga compensates and the page follows it live.
  await page.evaluate(() => ((window as unknown as { marker: string }).marker = 'same document'));
  await page.getByTestId('action-note').fill('inventory is back');
  await page.getByTestId('action-retry').focus();
  await page.keyboard.press('Enter');
  // The confirmation shows what the retry would do (test/e2e/console-preview.test.ts) and has the focus.
  await page.getByTestId('action-confirm').waitFor(WAIT);
  await page.keyboard.press('Enter');
  await page.locator('[data-testid="detail-status"]', { hasText: 'COMPENSATED' }).waitFor(WAIT);
  assert.equal(
    await page.evaluate(() => (window as unknown as { marker?: string }).marker),
    'same document',
    'no reload',
  );
  const op = page.getByTestId('operator-action');
  await op.waitFor(WAIT);
  assert.equal(await op.getAttribute('data-action'), 'retry');
  assert.equal(await op.getByTestId('operator-actor').textContent(), 'alice');
  assert.equal(await op.getByTestId('operator-note').textContent(), 'inventory is back');
  const after = await waterfallMatches(page, made.parked);
  assert.equal(after.status, 'COMPENSATED');
  assert.deepEqual(after.allowed_actions, []);
  await page.locator('button[data-testid="action-retry"]').waitFor({ state: 'hidden', ...WAIT });
  assert.deepEqual(await offered(page), []);
  assert.equal(await page.getByTestId('action-retry').isEnabled(), false);
  const order2 = await sys!.api('GET', `/orders/${made.parked}`);
  assert.equal(order2.body.status, 'CANCELLED');

  // The list, still filtered on PARKED, empties by itself.
  await page.getByTestId('back-to-list').click();
  await page.getByTestId('sagas-empty').waitFor(WAIT);
  assert.equal(await page.getByTestId('filter-PARKED').getAttribute('aria-pressed'), 'true');

  // The declined saga's waterfall: forward steps, then compensations in reverse order; nothing
  // to offer, so no action card at all.
  await page.goto(`/#/sagas/${made.declined}`);
  await page.locator('[data-testid="detail-status"]', { hasText: 'COMPENSATED' }).waitFor(WAIT);
  const declined = await waterfallMatches(page, made.declined);
  assert.deepEqual(declined.allowed_actions, []);
  assert.deepEqual(await offered(page), []);
  assert.equal(await page.getByTestId('actions').isVisible(), false);

  // At phone width the list and a detail fit: no horizontal scrolling.
  await page.setViewportSize({ width: 375, height: 800 });
  assert.equal(await overflow(page), 0, 'detail at 375 px');
  await page.goto('/#/sagas');
  await page.getByTestId('filter-ALL').click();
  await page.locator(`[data-testid="saga-row"][data-id="${made.parked}"]`).waitFor(WAIT);
  assert.equal(await overflow(page), 0, 'list at 375 px');
  await page.screenshot({ path: `${OUT}/list-375.png` });

  // Stock: available / reserved / sold per product.
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.getByTestId('nav-stock').click();
  const stock = page.locator('[data-testid="stock-row"][data-product="prod_1"]');
  await stock.waitFor(WAIT);
  assert.equal(await stock.getByTestId('stock-sold').textContent(), '3');
  assert.equal(await stock.getByTestId('stock-reserved').textContent(), '0');

  // Sign out: back to the sign-in page.
  await page.getByTestId('sign-out').click();
  await page.getByTestId('sign-in-form').waitFor(WAIT);
  await ctx.close();
});

test('no console errors or page errors in any page', () => {
  assert.deepEqual(problems, []);
});
