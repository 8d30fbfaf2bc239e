/**
 * The console's Bulk page in a real browser (issue 26 item 4): Debian's chromium through
 * playwright-core against a whole system. Six sagas are parked for real (the fault switchboard
 * refuses the pivot, then the refund); an operator fills the filter, reads the dry run (count,
 * money and stock sums, from the server), starts a capped job, pauses and resumes it from its page
 * and watches every saga's result arrive; a viewer sees the jobs but no form and no buttons.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { eventually, freshSystem, type Reply } from '../helpers/system.js';
import { compiledEntries } from '../helpers/compiled.js';
import { CONSOLE_OUT, launchChromium, overflow, signIn, watchConsole } from '../helpers/console-browser.js';

const OPERATOR = 'op-console-bulk-0123456789';
const VIEWER = 'vw-console-bulk-0123456789';
const WAIT = { timeout: 20_000 };

let sys: Awaited<ReturnType<typeof freshSystem>> | undefined;
let browser: Browser | undefined;
let admin = '';
const problems: string[] = [];
/** Newest first. */
const parked: string[] = [];

const api = (m: string, u: string, b?: unknown): Promise<Reply> =>
  sys!.admin(m, u, b, { authorization: `Bearer ${OPERATOR}` });

before(async () => {
  [sys, browser] = await Promise.all([
    freshSystem(
      {
        FAULTS_ENABLED: '1',
        ADMIN_TOKENS: `olga:operator:${OPERATOR},vic:viewer:${VIEWER}`,
        SAGA_COMPENSATION_MAX_ATTEMPTS: '2',
        SAGA_COMPENSATION_MAX_BACKOFF_MS: '50',
      },
      { entries: compiledEntries() },
    ),
    launchChromium(),
  ]);
  assert.ok(sys.adminUrl);
  admin = sys.adminUrl;
  const plan = await api('PUT', '/api/faults', {
    rules: [
      { id: 'refuse-confirm', kind: 'error', target: { step: 'confirm_order' }, phase: 'action' },
      { id: 'refuse-refund', kind: 'error', target: { step: 'charge_payment' }, phase: 'compensation' },
    ],
  });
  assert.equal(plan.status, 200, JSON.stringify(plan.body));
  for (let i = 0; i < 6; i++) {
    const r: Reply = await sys.api('POST', '/orders', {
      customer_id: 'console_bulk',
      items: [{ product_id: 'prod_1', quantity: 1, price: 10 }],
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    parked.unshift(r.body.id as string);
  }
  await eventually(
    'the sagas to park',
    async () => {
      const r: Reply = await api('GET', '/api/sagas?status=PARKED&limit=100');
      return r.body.sagas.length === 6 ? true : undefined;
    },
    60_000,
  );
  assert.equal((await api('PUT', '/api/faults', { rules: [] })).status, 200);
});

after(async () => {
  await browser?.close();
  await sys?.stop();
});

async function newPage(): Promise<Page> {
  const ctx = await browser!.newContext({ viewport: { width: 1280, height: 800 }, baseURL: admin });
  const page = await ctx.newPage();
  // A refused dry run is a 400 the page shows; the browser logs it as a failed resource.
  watchConsole(page, admin, problems, (m, p) => p === '/api/bulk/dry-run' && /status of 400/.test(m.text()));
  return page;
}

test(
  'an operator dry-runs a filter, starts a capped job, pauses and resumes it, and sees every result',
  { timeout: 120_000 },
  async () => {
    const page = await newPage();
    await signIn(page, OPERATOR, WAIT);
    await page.getByTestId('nav-bulk').click();
    await page.getByTestId('bulk-view').waitFor(WAIT);
    await page.getByTestId('bulk-empty').waitFor(WAIT);
    // The choices are the server's.
    const options = (id: string) =>
      page
        .getByTestId(id)
        .locator('option')
        .evaluateAll((els) => els.map((el) => (el as HTMLOptionElement).value));
    assert.deepEqual(await options('bulk-action'), ['retry', 'compensate', 'resolve']);
    await page
      .locator('[data-testid="bulk-step"] option[value="charge_payment"]')
      .waitFor({ state: 'attached', ...WAIT });

    // A resolve without a note: the server's refusal, shown as it says it; nothing to start.
    await page.getByTestId('bulk-action').selectOption('resolve');
    await page.getByTestId('bulk-cap').fill('4');
    await page.getByTestId('bulk-dry-run-button').click();
    await page.locator('[data-testid="bulk-message"]', { hasText: 'resolve needs a note' }).waitFor(WAIT);
    assert.equal(await page.getByTestId('bulk-start').isDisabled(), true);

    // The dry run: 4 of the 6 (the cap), all allowed, the refunds and releases summed by the server.
    await page.getByTestId('bulk-action').selectOption('retry');
    await page.getByTestId('bulk-status').selectOption('PARKED');
    await page.getByTestId('bulk-customer').fill('console_bulk');
    await page.getByTestId('bulk-failure-code').fill('fault_injected');
    await page.getByTestId('bulk-rate').fill('1');
    await page.getByTestId('bulk-dry-run-button').click();
    await page.getByTestId('bulk-dry-run').waitFor(WAIT);
    assert.equal(await page.getByTestId('bulk-dry-count').textContent(), '4');
    assert.equal(await page.getByTestId('bulk-dry-allowed').textContent(), '4');
    assert.match((await page.getByTestId('bulk-dry-truncated').textContent()) ?? '', /only the newest 4/);
    assert.equal(await page.getByTestId('bulk-dry-money').textContent(), 'refunds $40.00');
    assert.deepEqual(await page.getByTestId('bulk-dry-stock-line').allTextContents(), ['releases 4 × prod_1']);
    // Nothing was changed by looking.
    assert.equal((await api('GET', '/api/sagas?status=PARKED&limit=100')).body.sagas.length, 6);
    await page.screenshot({ path: path.join(CONSOLE_OUT, 'bulk-dry-run.png'), fullPage: true });

    // Start: the job's page, live.
    await page.getByTestId('bulk-start').click();
    await page.getByTestId('bulk-job-view').waitFor(WAIT);
    const id = await page.getByTestId('bulk-job-view').getAttribute('data-id');
    assert.match(id ?? '', /^bulk_/);
    await page.locator('[data-testid="bulk-item-row"][data-result="applied"]').first().waitFor(WAIT);
    assert.deepEqual(
      await page.getByTestId('bulk-item-row').evaluateAll((els) => els.map((el) => el.getAttribute('data-saga'))),
      parked.slice(0, 4),
    );
    await page.getByTestId('bulk-pause').click();
    await page.locator('[data-testid="bulk-state"]', { hasText: 'paused' }).waitFor(WAIT);
    assert.equal(await page.getByTestId('bulk-pause').isHidden(), true);
    const whilePaused = await page.getByTestId('bulk-progress').textContent();
    await page.getByTestId('bulk-resume').click();
    await page.locator('[data-testid="bulk-state"]', { hasText: 'done' }).waitFor({ timeout: 30_000 });
    assert.notEqual(whilePaused, '4 / 4');
    assert.equal(await page.getByTestId('bulk-progress').textContent(), '4 / 4');
    assert.deepEqual(await page.getByTestId('bulk-item-result').allTextContents(), [
      'applied',
      'applied',
      'applied',
      'applied',
    ]);
    assert.equal(await page.getByTestId('bulk-cancel').isHidden(), true);
    await page.screenshot({ path: path.join(CONSOLE_OUT, 'bulk-job.png'), fullPage: true });
    assert.equal(await overflow(page), 0);

    // The list shows it done; each saga has one OPERATOR_ACTION under the job's id.
    await page.getByRole('link', { name: '← Bulk actions' }).click();
    const row = page.locator(`[data-testid="bulk-job-row"][data-id="${id}"]`);
    await row.waitFor(WAIT);
    assert.equal(await row.getByTestId('bulk-job-state').textContent(), 'done');
    assert.equal(await row.getByTestId('bulk-job-progress').textContent(), '4 / 4');
    for (const sagaId of parked.slice(0, 4)) {
      const t: Reply = await api('GET', `/api/sagas/${sagaId}`);
      const acts = (t.body.events as Array<{ type: string; data: { bulk_id?: string } }>).filter(
        (e) => e.type === 'OPERATOR_ACTION',
      );
      assert.deepEqual(
        acts.map((e) => e.data.bulk_id),
        [id],
      );
    }
    await page.context().close();
  },
);

test('a viewer sees the jobs and their results, but no form and no buttons', async () => {
  const page = await newPage();
  await signIn(page, VIEWER, WAIT);
  await page.getByTestId('nav-bulk').click();
  await page.getByTestId('bulk-job-row').first().waitFor(WAIT);
  assert.equal(await page.getByTestId('bulk-form').count(), 0);
  await page.getByTestId('bulk-job-row').first().getByRole('link').click();
  await page.getByTestId('bulk-item-row').first().waitFor(WAIT);
  for (const b of ['bulk-pause', 'bulk-resume', 'bulk-cancel']) assert.equal(await page.getByTestId(b).count(), 0);
  await page.context().close();
  assert.deepEqual(problems, []);
});
