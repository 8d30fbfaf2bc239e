/**
 * The console's Versions view in a real browser (Debian's chromium through playwright-core, as
 * test/e2e/console-browser.test.ts), over the inject harness's parts with their admin app listening
 * on an ephemeral loopback port, registering place_order v1 and v2: the table says what the API
 * says; a dry run shows the API's counts and each saga's reason; a viewer can plan but sees no
 * Migrate button; an operator migrates after confirming; a saga's detail shows its version, and
 * says when this gateway does not have it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { Browser, Page } from 'playwright-core';
import { CONSOLE_OUT, launchChromium, overflow, signIn, watchConsole } from '../helpers/console-browser.js';
import { gatewayApp, type GatewayApp } from '../helpers/gateway-app.js';
import { newSaga, STARTED } from '../helpers/saga-log-work.js';
import type { SagaRecord } from '../../src/saga/model.js';

const OPERATOR = 'op-console-versions-0123456789';
const VIEWER = 'vw-console-versions-0123456789';
const WAIT = { timeout: 20_000 };

let g: GatewayApp;
let browser: Browser;
let launching: Promise<Browser> | undefined;
let base = '';
const problems: string[] = [];
const ids = { afterPivot: '', compensating: '', finishing: '', newer: '' };

/** A saga as another gateway left it in the shared log: parked, or in flight under a live foreign lease. */
async function leftInLog(over: Partial<SagaRecord>): Promise<string> {
  const id = randomUUID();
  const at = Date.now() - 60_000;
  const held = over.status === 'RUNNING' || over.status === 'COMPENSATING';
  const res = await g.log.create(
    newSaga(id, {
      definition: 'place_order',
      version: 1,
      input: { order_id: id, customer_id: 'cust_console_versions', total_cents: 1000 },
      subject: 'cust_console_versions',
      leaseOwner: held ? 'gateway-elsewhere' : null,
      leaseExpiresAt: 0,
      createdAt: at,
      updatedAt: at,
      ...over,
    }),
    [STARTED],
    held ? 3_600_000 : 0,
  );
  assert.ok(res.created);
  return id;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the admin API's JSON, read loosely: the assertions are the type check
async function api(method: 'GET' | 'POST', url: string, payload?: object): Promise<any> {
  const r = await g.admin.inject({ method, url, payload, headers: { authorization: `Bearer ${VIEWER}` } });
  assert.equal(r.statusCode, 200, r.body);
  return r.json();
}

async function page(token: string): Promise<Page> {
  const p = await browser.newPage({ baseURL: base, viewport: { width: 1280, height: 800 } });
  // The one refusal asked for on purpose (a version this gateway does not register).
  watchConsole(p, base, problems, (m, path) => path === '/api/migrations' && /status of 409/.test(m.text()));
  await signIn(p, token, WAIT);
  return p;
}

/** The versions table as the page shows it: one row of cell texts per version. */
async function shownVersions(p: Page): Promise<string[][]> {
  return p
    .getByTestId('version-row')
    .evaluateAll((rows) => rows.map((r) => [...r.querySelectorAll('td')].map((td) => td.textContent ?? '')));
}

/** The same rows, as the API's answer says they must read. */
async function expectedVersions(): Promise<string[][]> {
  const words: Record<string, string> = { driven: 'driven here', left_to_others: 'left to other gateways' };
  const body = (await api('GET', '/api/versions')) as {
    versions: Array<{
      definition: string;
      version: number;
      state: string;
      starts_here: boolean;
      running: number;
      compensating: number;
      parked: number;
    }>;
  };
  return body.versions.map((v) => [
    v.definition,
    `v${v.version}`,
    words[v.state] ?? v.state,
    v.starts_here ? 'start here' : '–',
    String(v.running),
    String(v.compensating),
    String(v.parked),
  ]);
}

async function waitForVersions(p: Page, expected: string[][]): Promise<void> {
  await p.waitForFunction(
    (want) =>
      JSON.stringify(
        [...document.querySelectorAll('[data-testid="version-row"]')].map((r) =>
          [...r.querySelectorAll('td')].map((td) => td.textContent ?? ''),
        ),
      ) === JSON.stringify(want),
    expected,
    WAIT,
  );
}

before(async () => {
  // The browser starts while the harness starts and the log is filled.
  launching = launchChromium();
  g = await gatewayApp({
    adminTokens: `alice:operator:${OPERATOR},victor:viewer:${VIEWER}`,
    placeOrderVersions: { registered: [1, 2], start: 1 },
  });
  ids.afterPivot = await leftInLog({
    status: 'PARKED',
    stepIndex: 4,
    currentStep: 'commit_stock',
    attempt: 50,
    failure: { step: 'commit_stock', code: 'unavailable', message: 'inventory unreachable' },
  });
  ids.compensating = await leftInLog({
    status: 'PARKED',
    stepIndex: 2,
    compIndex: 1,
    currentStep: 'reserve_stock',
    attempt: 5,
    failure: { step: 'charge_payment', code: 'payment_declined', message: 'declined' },
  });
  ids.finishing = await leftInLog({ status: 'COMPENSATING', stepIndex: 1, compIndex: -1 });
  ids.newer = await leftInLog({ version: 3, status: 'RUNNING', stepIndex: 1, currentStep: 'create_order' });
  base = await g.admin.listen({ port: 0, host: '127.0.0.1' });
  browser = await launching;
});
after(async () => {
  // The browser, also when the setting up failed before the hook had it.
  await (await launching?.catch(() => undefined))?.close();
  await g?.close();
});

test(
  'a viewer sees the versions as the API counts them, can dry-run, and has no Migrate button',
  { timeout: 90_000 },
  async () => {
    const p = await page(VIEWER);
    await p.getByTestId('nav-versions').click();
    await p.getByTestId('versions-view').waitFor(WAIT);
    const expected = await expectedVersions();
    assert.deepEqual(
      expected.map((r) => r.slice(0, 3)),
      [
        ['place_order', 'v1', 'driven here'],
        ['place_order', 'v2', 'driven here'],
        ['place_order', 'v3', 'left to other gateways'],
      ],
    );
    await waitForVersions(p, expected);
    assert.deepEqual(await shownVersions(p), expected);
    assert.equal(await p.getByTestId('nav-versions').getAttribute('aria-current'), 'page');

    // A viewer plans; the Migrate button is not there at all.
    assert.equal(await p.getByTestId('migrate-run').count(), 0);
    assert.equal(await p.getByLabel('From version').inputValue(), '1');
    assert.equal(await p.getByLabel('To version').inputValue(), '2');
    await p.getByTestId('migrate-dry-run').click();
    await p.getByTestId('migrate-summary').waitFor(WAIT);
    const plan = await api('POST', '/api/migrations', { definition: 'place_order', from: 1, to: 2, dry_run: true });
    assert.equal(
      await p.getByTestId('migrate-summary').textContent(),
      `Dry run of place_order@1 to version 2: ${plan.scanned} saga(s) in flight looked at; ${plan.moved} would move, ${plan.stayed} stay.`,
    );
    assert.deepEqual([plan.scanned, plan.moved, plan.stayed], [3, 2, 1]);
    const rows = await p
      .getByTestId('migrate-item')
      .evaluateAll((els) => els.map((el) => [el.getAttribute('data-id'), el.getAttribute('data-outcome')]));
    assert.deepEqual(
      rows,
      plan.items.map((i: { saga_id: string; outcome: string }) => [i.saga_id, i.outcome]),
    );
    assert.match(
      (await p
        .locator(`[data-testid="migrate-item"][data-id="${ids.finishing}"] [data-testid="migrate-item-why"]`)
        .textContent()) ?? '',
      /^finishing: it has nothing left to compensate/,
    );
    assert.equal(
      await p.locator('[data-testid="migrate-codes"] li[data-code="finishing"]').textContent(),
      'finishing: 1',
    );
    assert.doesNotMatch((await p.getByTestId('migrate-result').textContent()) ?? '', /null|undefined/);
    // A refusal reads as the server said it.
    await p.getByLabel('To version').fill('3');
    await p.getByTestId('migrate-dry-run').click();
    await p.getByText('Dry run refused: this gateway does not register place_order@3 (unknown_version)').waitFor(WAIT);
    // Nothing moved.
    assert.equal((await g.log.get(ids.afterPivot))?.version, 1);
    await p.setViewportSize({ width: 375, height: 800 });
    assert.equal(await overflow(p), 0, 'no horizontal overflow at 375 px');
    await p.close();
  },
);

test('an operator migrates after confirming; the details show the versions', { timeout: 90_000 }, async () => {
  const p = await page(OPERATOR);
  await p.goto('/#/versions');
  await waitForVersions(p, await expectedVersions());
  await p.getByLabel('Note').fill('v2 rollout');
  await p.getByTestId('migrate-run').click();
  await p.getByTestId('migrate-question').waitFor(WAIT);
  assert.equal(
    await p.getByTestId('migrate-question').textContent(),
    'Move 2 saga(s) of place_order@1 to version 2? 1 stay on version 1. Each moved saga records it in its timeline with your name.',
  );
  // Cancel first: nothing moves.
  await p.getByTestId('migrate-cancel').click();
  assert.equal((await g.log.get(ids.afterPivot))?.version, 1);
  await p.getByTestId('migrate-run').click();
  await p.getByTestId('migrate-confirm').click();
  await p.getByText(/^Migrated: 2 saga\(s\) moved to version 2 \(action id migrate_ui-[0-9a-f]{24}\)\.$/).waitFor(WAIT);
  assert.equal((await g.log.get(ids.afterPivot))?.version, 2);
  assert.equal((await g.log.get(ids.compensating))?.version, 2);
  // The table follows (live refresh), as the API counts.
  const after = await expectedVersions();
  assert.deepEqual(after[1], ['place_order', 'v2', 'driven here', '–', '0', '0', '2']);
  await waitForVersions(p, after);
  await p.screenshot({ path: `${CONSOLE_OUT}versions.png`, fullPage: true });

  // A migrated saga's detail: its new version, and its migration among the operator actions.
  await p.goto(`/#/sagas/${ids.afterPivot}`);
  await p.getByTestId('detail-definition').waitFor(WAIT);
  await p.waitForFunction(
    () => document.querySelector('[data-testid="detail-definition"]')?.textContent === 'place_order v2',
    undefined,
    WAIT,
  );
  assert.equal(await p.getByTestId('detail-not-here').count(), 0);
  // A saga of a version this gateway does not have: the detail says who drives it.
  await p.goto(`/#/sagas/${ids.newer}`);
  await p.getByTestId('detail-not-here').waitFor(WAIT);
  assert.equal(
    await p.getByTestId('detail-not-here').textContent(),
    'driven by another gateway: this one does not have place_order v3',
  );
  assert.match((await p.getByTestId('detail-definition').textContent()) ?? '', /^place_order v3/);
  await p.close();
  assert.deepEqual(problems, []);
});
