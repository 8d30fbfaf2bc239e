import assert from 'node:assert/strict';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type ConsoleMessage, type Page } from 'playwright-core';

/**
 * What the console's browser tests share: Debian's chromium through playwright-core (never a
 * downloaded browser; .ci/run installs chromium when it is missing), where screenshots go, how a
 * page's console is watched, how an operator signs in.
 */
export const CHROMIUM = '/usr/bin/chromium';
export const CONSOLE_OUT = fileURLToPath(new URL('../../test-output/console/', import.meta.url));

export async function launchChromium(): Promise<Browser> {
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium (.ci/run does)`);
  fs.mkdirSync(CONSOLE_OUT, { recursive: true });
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
}

/**
 * Collects `page`'s console errors and warnings and its page errors into `problems`. Expected, and
 * left out: the 401 of `GET /api/session` that tells a signed-out console to show its sign-in, and
 * whatever `expected` accepts (given the message and the path it came from).
 */
export function watchConsole(
  page: Page,
  base: string,
  problems: string[],
  expected?: (m: ConsoleMessage, path: string) => boolean,
): void {
  page.on('console', (m: ConsoleMessage) => {
    if (m.type() !== 'error' && m.type() !== 'warning') return;
    const at = m.location().url;
    const path = at ? new URL(at, base).pathname : '';
    if (m.type() === 'error' && /status of 401/.test(m.text()) && path === '/api/session') return;
    if (expected?.(m, path)) return;
    problems.push(`console ${m.type()}: ${m.text()} (${at})`);
  });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
}

/** Signs in from the sign-in page with `token`, and waits for the saga list. */
export async function signIn(page: Page, token: string, wait = { timeout: 20_000 }): Promise<void> {
  await page.goto('/');
  await page.getByTestId('sign-in-form').waitFor(wait);
  await page.getByLabel('Admin token').fill(token);
  await page.getByTestId('sign-in-submit').click();
  await page.getByTestId('sagas-view').waitFor(wait);
}

/**
 * The CSRF token the console keeps after its sign-in (in its origin's localStorage, under the key
 * src/gateway/admin/ui/js/api.js names): what a request signed in by the cookie must carry.
 */
export async function csrfOf(page: Page): Promise<string> {
  const token = await page.evaluate(() => localStorage.getItem('sagas-console.csrf'));
  assert.ok(token, 'the console holds no CSRF token: not signed in?');
  return token;
}

/** How far the page is wider than its viewport (0: no horizontal scrolling). */
export function overflow(page: Page): Promise<number> {
  return page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
}
