import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { expect } from 'vitest';
import { ADMIN_KEY } from './harness.js';

// Headless Chromium from the system (Debian's `chromium` package): nothing is downloaded. Each test
// takes a fresh context (no cookies, no storage) from one browser per file.

const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: [
      '--headless=new',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/**
 * A fresh context for `baseUrl`, 1280×800 unless told otherwise. An action or navigation that does
 * not happen fails within 10 s, naming itself, rather than holding the test until its timeout.
 */
export async function newContext(
  browser: Browser,
  baseUrl: string,
  options: { width?: number; height?: number; clipboard?: boolean } = {},
): Promise<BrowserContext> {
  const context = await browser.newContext({
    baseURL: baseUrl,
    viewport: { width: options.width ?? 1280, height: options.height ?? 800 },
  });
  context.setDefaultTimeout(10_000);
  if (options.clipboard) await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: baseUrl });
  return context;
}

/** Signs in through the form; resolves on the page it lands on. */
export async function signIn(page: Page, key = ADMIN_KEY, path = '/console/sign-in'): Promise<void> {
  await page.goto(path);
  await page.getByLabel('Admin key').fill(key);
  await Promise.all([page.waitForLoadState('load'), page.getByRole('button', { name: 'Sign in' }).click()]);
}

/**
 * A fresh context (see `newContext`) with a page signed in through the form, landed on `next`
 * (the form's `?next=`) or else on the bots page.
 */
export async function signedIn(
  browser: Browser,
  baseUrl: string,
  options: { width?: number; height?: number; clipboard?: boolean; next?: string } = {},
): Promise<{ context: BrowserContext; page: Page }> {
  const context = await newContext(browser, baseUrl, options);
  const page = await context.newPage();
  const path = options.next === undefined ? undefined : `/console/sign-in?next=${encodeURIComponent(options.next)}`;
  await signIn(page, ADMIN_KEY, path);
  expect(new URL(page.url()).pathname).toBe(options.next ?? '/console/bots');
  return { context, page };
}

/** The session cookie a context holds, as a Cookie header. */
export async function sessionCookie(context: BrowserContext): Promise<string> {
  const cookie = (await context.cookies()).find((c) => c.name === 'flowpost_session');
  expect(cookie).toBeDefined();
  return `flowpost_session=${cookie!.value}`;
}

/** Whether the page scrolls sideways at its current width. */
export async function scrollsSideways(page: Page): Promise<boolean> {
  return page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
}

/** Saves a screenshot of the page when SCREENSHOTS_DIR is set (docs/screenshots/ holds the README's). */
export async function screenshot(page: Page, name: string): Promise<void> {
  const dir = process.env.SCREENSHOTS_DIR;
  if (!dir) return;
  await page.screenshot({ path: `${dir}/${name}.png`, fullPage: false });
}
