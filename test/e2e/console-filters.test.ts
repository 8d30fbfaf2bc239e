/**
 * The console's saga filters in a real browser (Debian's chromium through playwright-core, as
 * test/e2e/console-browser.test.ts): customer typed from the keyboard, the step list from the
 * API, a time range, Clear; no horizontal overflow at 375 px and no console error. Over the
 * inject harness's parts with its admin app listening on an ephemeral loopback port.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser } from 'playwright-core';
import { launchChromium, overflow, watchConsole } from '../helpers/console-browser.js';
import { gatewayApp } from '../helpers/gateway-app.js';

let launching: Promise<Browser> | undefined;
// The test closes its browser; this, a browser the test never got to (its setting up failed).
after(async () => {
  const browser = await launching?.catch(() => undefined);
  if (browser?.isConnected()) await browser.close();
});

test('the saga list filters by customer, step and creation time, from the keyboard', { timeout: 90_000 }, async () => {
  // The browser starts while the harness starts and the orders are placed.
  launching = launchChromium();
  const g = await gatewayApp();
  const place = async (c: string, price = 10) =>
    (
      await g.app.inject({
        method: 'POST',
        url: '/orders',
        payload: { customer_id: c, items: [{ product_id: 'prod_1', quantity: 1, price }] },
        headers: { prefer: 'wait=5' },
      })
    ).json().id as string;
  const a = await place('cust_ui_a');
  await place('cust_ui_b', 600);
  const addr = await g.admin.listen({ port: 0, host: '127.0.0.1' });
  const browser = await launching;
  const errors: string[] = [];
  try {
    const page = await browser.newPage({ baseURL: addr, viewport: { width: 1280, height: 800 } });
    watchConsole(page, addr, errors);
    await page.goto('/#/sagas');
    await page.getByTestId('saga-row').first().waitFor();
    assert.equal(await page.getByTestId('saga-row').count(), 2);
    await page.getByLabel('Customer').focus();
    await page.keyboard.type('cust_ui_a');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="saga-row"]').length === 1);
    assert.equal(await page.getByTestId('saga-row').getAttribute('data-id'), a);
    const opts = await page.getByLabel('Step').locator('option').allTextContents();
    assert.deepEqual(opts, [
      'any step',
      'create_order',
      'reserve_stock',
      'charge_payment',
      'confirm_order',
      'commit_stock',
    ]);
    await page.getByLabel('Step').selectOption('charge_payment');
    await page.getByTestId('sagas-empty').waitFor({ state: 'visible' });
    await page.getByTestId('filter-clear').click();
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="saga-row"]').length === 2);
    await page.getByLabel('Created from').fill('2001-01-01T10:00');
    await page.getByLabel('to', { exact: true }).fill('2001-01-02T10:00');
    await page.getByLabel('to', { exact: true }).press('Enter');
    await page.getByTestId('sagas-empty').waitFor({ state: 'visible' });
    await page.getByLabel('Created from').fill('');
    await page.getByLabel('to', { exact: true }).fill('');
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="saga-row"]').length === 2);
    // No fault switchboard here: no Faults link, and its page says how to switch it on.
    await page.goto('/#/faults');
    await page.getByTestId('faults-off').waitFor({ state: 'visible' });
    assert.match((await page.getByTestId('faults-off').textContent()) ?? '', /FAULTS_ENABLED=1/);
    assert.equal(await page.getByTestId('nav-faults').isVisible(), false);
    assert.equal(await page.getByTestId('fault-table').isVisible(), false);
    await page.goto('/#/sagas');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="saga-row"]').length === 2);
    await page.setViewportSize({ width: 375, height: 800 });
    assert.equal(await overflow(page), 0, 'no horizontal overflow at 375 px');
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    await g.close();
  }
});
