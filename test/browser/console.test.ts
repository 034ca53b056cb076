import type { Browser, BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConsoleDeps } from '../../src/console/deps.js';
import { consoleRouter } from '../../src/console/router.js';
import { SessionStore } from '../../src/console/session.js';
import { createRedisClient } from '../../src/redis/connection.js';
import { recordDelivery } from '../../src/runner/effects.js';
import {
  launchBrowser,
  newContext,
  screenshot,
  scrollsSideways,
  sessionCookie,
  signedIn,
  signIn,
} from '../support/browser.js';
import { ADMIN_KEY, REDIS_URL, startHarness, waitFor, type Harness } from '../support/harness.js';
import { recorderFor, startTarget, type Target } from '../support/outbound-target.js';

let h: Harness;
let browser: Browser;
let botId: string;
let endpointId: string;
let target: Target;
let failing = true;

const SCRIPT = {
  start: 'hello',
  steps: [
    { key: 'hello', type: 'send_message', text: 'Hi there', next: 'bye' },
    { key: 'bye', type: 'send_message', text: 'Bye' },
  ],
};

beforeAll(async () => {
  h = await startHarness({
    workers: true,
    env: {
      PUBLIC_URL: 'https://flowpost.example.com',
      OUTBOUND_ALLOW_CIDRS: '127.0.0.0/8',
      OUTBOUND_RETRY_SCHEDULE: '0,0.1',
      OUTBOUND_TIMEOUT_MS: '1000',
    },
  });
  browser = await launchBrowser();
  // A Telegram token (answered by the harness's fake Bot API) gives the bot a username: campaign links need one.
  const bot = await h.api('POST', '/api/v1/bots', {
    name: 'Spring promo',
    telegramToken: '7100001:AAH-fake-token-for-console-tests',
  });
  expect(bot.status, JSON.stringify(bot.body)).toBe(201);
  botId = bot.body.id;
  endpointId = (await h.api('POST', `/api/v1/bots/${botId}/webhooks`, { name: 'tracker' })).body.id;
  expect((await h.api('PUT', `/api/v1/bots/${botId}/script`, SCRIPT)).status).toBe(200);
  target = await startTarget((_req, res) => {
    res.writeHead(failing ? 500 : 200, { 'content-type': 'text/plain' });
    res.end(failing ? 'upstream exploded <b>500</b>' : 'ok');
  });
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await target?.close();
  await h?.close();
});

/** The session cookie a context holds, as a Cookie header: HttpOnly, SameSite=Strict, for /console only. */
async function strictSessionCookie(context: BrowserContext): Promise<string> {
  const header = await sessionCookie(context);
  const cookie = (await context.cookies()).find((c) => c.name === 'flowpost_session')!;
  expect(cookie.httpOnly).toBe(true);
  expect(cookie.sameSite).toBe('Strict');
  expect(cookie.path).toBe('/console');
  return header;
}

describe('signing in and out', () => {
  it('refuses a wrong key with a message, signs in with the admin key, and signs out for good', async () => {
    const context = await newContext(browser, h.baseUrl);
    const page = await context.newPage();
    await page.goto('/console');
    expect(new URL(page.url()).pathname).toBe('/console/sign-in');
    await screenshot(page, 'sign-in');

    await signIn(page, 'not-the-key');
    expect(await page.getByRole('alert').textContent()).toBe('That is not the admin key.');
    expect(new URL(page.url()).pathname).toBe('/console/sign-in');

    await signIn(page);
    expect(new URL(page.url()).pathname).toBe('/console/bots');
    expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('Bots');
    expect(await page.getByRole('link', { name: 'Spring promo' }).count()).toBe(1);
    await screenshot(page, 'bots');
    const cookie = await strictSessionCookie(context);

    await Promise.all([page.waitForURL(/\/console\/sign-in/), page.getByRole('button', { name: 'Sign out' }).click()]);
    expect(await page.getByRole('status').textContent()).toBe('You are signed out.');
    // The old cookie opens nothing any more.
    const reused = await fetch(`${h.baseUrl}/console/bots`, { headers: { cookie }, redirect: 'manual' });
    expect(reused.status).toBe(303);
    expect(reused.headers.get('location')).toBe('/console/sign-in?next=%2Fconsole%2Fbots');
    await context.close();
  });

  it('returns to the page asked for, but never to another site', async () => {
    const context = await newContext(browser, h.baseUrl);
    const page = await context.newPage();
    await page.goto(`/console/bots/${botId}/script`);
    expect(new URL(page.url()).search).toBe(`?next=${encodeURIComponent(`/console/bots/${botId}/script`)}`);
    await page.getByLabel('Admin key').fill(ADMIN_KEY);
    await Promise.all([page.waitForURL(/\/script$/), page.getByRole('button', { name: 'Sign in' }).click()]);
    await context.close();

    const other = await newContext(browser, h.baseUrl);
    const page2 = await other.newPage();
    await signIn(page2, ADMIN_KEY, '/console/sign-in?next=%2F%2Fevil.example%2Fconsole');
    expect(page2.url()).toBe(`${h.baseUrl}/console/bots`);
    await other.close();
  });

  it('reaches the key field and the button with the keyboard', async () => {
    const context = await newContext(browser, h.baseUrl);
    const page = await context.newPage();
    await page.goto('/console/sign-in');
    // From the top of the page (the key field has autofocus).
    await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Skip to content');
    const focused: string[] = [];
    for (let i = 0; i < 6; i++) {
      await page.keyboard.press('Tab');
      focused.push(await page.evaluate(() => document.activeElement?.id || document.activeElement?.textContent || ''));
    }
    expect(focused).toContain('admin-key');
    expect(focused).toContain('Sign in');
    await context.close();
  });

  it('marks the cookies Secure behind an https proxy, and refuses a sign-in without its form token', async () => {
    const https = { 'x-forwarded-proto': 'https' };
    const form = await fetch(`${h.baseUrl}/console/sign-in`, { headers: https });
    const preSession = form.headers.getSetCookie().find((c) => c.startsWith('flowpost_signin='))!;
    const attributes = (setCookie: string | undefined) =>
      new Set(
        setCookie!
          .split('; ')
          .slice(1)
          .map((a) => a.toLowerCase()),
      );
    for (const attribute of ['path=/console', 'secure', 'samesite=strict', 'httponly'])
      expect(attributes(preSession).has(attribute), attribute).toBe(true);
    const token = /name="_csrf" value="([0-9a-f]{64})"/.exec(await form.text())![1]!;
    const signIn = (body: string, cookie: string) =>
      fetch(`${h.baseUrl}/console/sign-in`, {
        method: 'POST',
        redirect: 'manual',
        headers: { ...https, cookie, 'content-type': 'application/x-www-form-urlencoded' },
        body,
      });
    const cookie = preSession.split(';')[0]!;
    // Login CSRF: a key sent without the token of this browser's sign-in form is not taken.
    expect((await signIn(`key=${ADMIN_KEY}`, cookie)).status).toBe(403);
    expect((await signIn(`_csrf=${token}&key=${ADMIN_KEY}`, '')).status).toBe(403);
    const signedIn = await signIn(`_csrf=${token}&key=${ADMIN_KEY}`, cookie);
    expect(signedIn.status).toBe(303);
    const session = signedIn.headers.getSetCookie().find((c) => c.startsWith('flowpost_session='));
    expect(session).toMatch(/^flowpost_session=[0-9a-f]{64};/);
    expect([...attributes(session)].sort()).toEqual(['httponly', 'path=/console', 'samesite=strict', 'secure']);
  });

  it('a session of a rotated admin key is over', async () => {
    const redis = createRedisClient(REDIS_URL);
    try {
      const before = new SessionStore(redis, h.config.queuePrefix, 'the-old-key');
      const session = await before.create();
      expect(await before.find(session.id)).toMatchObject({ id: session.id });
      expect(await new SessionStore(redis, h.config.queuePrefix, 'the-new-key').find(session.id)).toBeNull();
      expect(await before.find(session.id)).toBeNull();
    } finally {
      redis.disconnect();
    }
  });
});

describe('every console route', () => {
  it('refuses a request without a session (but sign-in and the assets)', async () => {
    const router = consoleRouter({ management: {}, sessions: {}, adminApiKey: 'x' } as unknown as ConsoleDeps);
    const routes = router.stack.filter((layer) => layer.methods.length > 0);
    expect(routes.length).toBeGreaterThanOrEqual(8);
    const open: string[] = [];
    for (const layer of routes) {
      // Real values where a route looks one up, so that only the missing session can refuse.
      const values: Record<string, string> = { botId, chatId: '1', name: 'console.css' };
      const path = String(layer.path).replace(
        /:(\w+)/g,
        (_, param: string) => values[param] ?? '00000000-0000-4000-8000-000000000000',
      );
      for (const method of layer.methods.filter((m) => m !== 'HEAD')) {
        const response = await fetch(`${h.baseUrl}${path}`, {
          method,
          redirect: 'manual',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: method === 'GET' ? undefined : '_csrf=x',
        });
        const refused = response.status === 303 && response.headers.get('location')!.startsWith('/console/sign-in');
        if (!refused) open.push(`${method} ${String(layer.path)} ${response.status}`);
      }
    }
    expect(open.sort()).toEqual([
      'GET /console/assets/:name 200',
      'GET /console/sign-in 200',
      'POST /console/sign-in 403',
    ]);
  });

  it('answers pages with a strict content security policy, no framing and no caching', async () => {
    const response = await fetch(`${h.baseUrl}/console/sign-in`);
    expect(response.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect(response.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(response.headers.get('x-frame-options')).toBe('DENY');
    expect(response.headers.get('referrer-policy')).toBe('same-origin');
    expect(response.headers.get('cache-control')).toBe('no-store');
    expect(await response.text()).not.toMatch(/<script>|style="/);
  });
});

describe('forms', () => {
  it('refuse a POST without the CSRF token, with a wrong one, or from another site', async () => {
    const { context, page } = await signedIn(browser, h.baseUrl);
    const cookie = await strictSessionCookie(context);
    await page.goto(`/console/bots/${botId}/script`);
    const token = await page.locator('form[action$="/script"] input[name="_csrf"]').inputValue();
    const post = (body: string, headers: Record<string, string> = {}) =>
      fetch(`${h.baseUrl}/console/bots/${botId}/script`, {
        method: 'POST',
        redirect: 'manual',
        headers: { cookie, 'content-type': 'application/x-www-form-urlencoded', ...headers },
        body,
      });
    const missing = await post('script=%7B%7D');
    expect(missing.status).toBe(403);
    expect(await missing.text()).toContain('security token is missing or stale');
    expect((await post(`_csrf=${'0'.repeat(64)}&script=%7B%7D`)).status).toBe(403);
    expect((await post(`_csrf=${token}&script=%7B%7D`, { origin: 'https://evil.example' })).status).toBe(403);
    expect((await post(`_csrf=${token}&script=%7B%7D`, { 'sec-fetch-site': 'cross-site' })).status).toBe(403);
    // With its token the same form is taken (and refused only for its content).
    expect((await post(`_csrf=${token}&script=%7B%7D`)).status).toBe(422);
    await context.close();
  });
});

describe('the bot page', () => {
  it('shows campaign links with their stats', async () => {
    const campaign = await h.api('POST', `/api/v1/bots/${botId}/campaigns`, { name: 'Instagram <spring>' });
    expect(campaign.status, JSON.stringify(campaign.body)).toBe(201);
    for (let i = 0; i < 3; i++) await fetch(`${h.baseUrl}/c/${campaign.body.id}`, { redirect: 'manual' });
    const { context, page } = await signedIn(browser, h.baseUrl, { next: `/console/bots/${botId}` });
    const card = page.locator('li.card', { has: page.getByRole('heading', { name: 'Instagram <spring>' }) });
    expect(await card.getByLabel('Instagram <spring>: click link', { exact: true }).inputValue()).toBe(
      campaign.body.link,
    );
    expect(await card.getByLabel('Instagram <spring>: Telegram link', { exact: true }).inputValue()).toBe(
      campaign.body.telegramLink,
    );
    expect((await card.locator('.stats').innerText()).replace(/\s+/g, ' ')).toContain(
      'Clicks 3 Starts 0 Conversions none',
    );
    await context.close();
  });

  it('shows the webhook URLs with labelled copy buttons that copy them', async () => {
    const { context, page } = await signedIn(browser, h.baseUrl, { clipboard: true });
    await page.getByRole('link', { name: 'Spring promo' }).click();
    await page.waitForURL(new RegExp(`/console/bots/${botId}$`));
    const url = `${h.config.publicUrl}/api/bots/webhooks/${endpointId}/updateDialog`;
    expect(await page.getByLabel('tracker: dialog updates', { exact: true }).inputValue()).toBe(url);
    const copy = page.getByRole('button', { name: 'Copy URL tracker: dialog updates' });
    await copy.focus();
    expect(await copy.evaluate((element) => element === document.activeElement)).toBe(true);
    await page.keyboard.press('Enter');
    await waitFor(async () => (await page.getByRole('status').textContent()) === 'Copied.', 5_000, 'copied');
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(url);
    await screenshot(page, 'bot');
    await context.close();
  });
});

describe('the script page', () => {
  it('shows a problem next to its step, keeps the text, and saves the fixed script', async () => {
    const { context, page } = await signedIn(browser, h.baseUrl, { next: `/console/bots/${botId}/script` });
    const editor = page.getByLabel('Script document (JSON)');
    const stored = JSON.parse(await editor.inputValue());
    expect(stored.steps.map((s: { key: string }) => s.key)).toEqual(['hello', 'bye']);

    const broken = { ...stored, steps: [stored.steps[0], { ...stored.steps[1], next: 'nowhere' }] };
    await editor.fill(JSON.stringify(broken, null, 2));
    await page.getByRole('button', { name: 'Save script' }).click();
    await page.waitForLoadState('load');
    // The problem is listed with its step (index and key), and the other step has none.
    const step = page.locator('.step[data-step-index="1"]');
    expect((await step.locator('h3').innerText()).trim()).toBe('Step 2 · bye send_message');
    expect(await step.locator('.step-problems li').allInnerTexts()).toEqual(['steps[1].next names no step: "nowhere"']);
    expect(await page.locator('.step[data-step-index="0"] .step-problems').count()).toBe(0);
    expect(await page.getByRole('alert').locator('h2').innerText()).toBe('The script has 1 problem; nothing was saved');
    expect(JSON.parse(await editor.inputValue()).steps[1].next).toBe('nowhere');
    expect(await editor.getAttribute('aria-invalid')).toBe('true');
    await screenshot(page, 'script-problems');
    // Nothing was stored.
    expect((await h.api('GET', `/api/v1/bots/${botId}/script`)).body.steps[1].next).toBeUndefined();

    const fixed = {
      ...broken,
      steps: [broken.steps[0], { key: 'bye', type: 'send_message', text: 'Bye & see you <soon>' }],
    };
    await editor.fill(JSON.stringify(fixed, null, 2));
    await Promise.all([
      page.waitForURL(/notice=saved/, { timeout: 10_000 }),
      page.getByRole('button', { name: 'Save script' }).click(),
    ]);
    expect(await page.getByRole('status').textContent()).toBe('Saved.');
    const after = (await h.api('GET', `/api/v1/bots/${botId}/script`)).body;
    expect(after.steps[1]).toMatchObject({ key: 'bye', text: 'Bye & see you <soon>' });
    expect(after.steps[1].next).toBeUndefined();
    expect(JSON.parse(await editor.inputValue()).steps[1].text).toBe('Bye & see you <soon>');
    expect(await page.locator('.problems').count()).toBe(0);
    await context.close();
  });
});

describe('the deliveries page', () => {
  it('lists a failed delivery with its attempts and replays it', async () => {
    const queues = recorderFor(h.db, h.config.queuePrefix);
    let id: string;
    try {
      id = await recordDelivery(
        { deliveries: queues.recorder },
        { botId, chatId: 42 },
        {
          type: 'send_webhook',
          stepId: '00000000-0000-4000-8000-000000000000',
          method: 'GET',
          url: `${target.url}/hook?x=1`,
          headers: {},
          body: null,
        },
      );
    } finally {
      await queues.close();
    }
    await waitFor(async () => (await h.db('deliveries').where({ id }).first())?.state === 'failed', 15_000, 'failed');
    const callsBefore = target.requests.length;

    const { context, page } = await signedIn(browser, h.baseUrl, { next: `/console/bots/${botId}/deliveries` });
    await page.getByRole('link', { name: 'Failed' }).click();
    await page.waitForURL(/state=failed/);
    const card = page.locator(`[data-delivery-id="${id}"]`);
    expect(await card.getAttribute('data-state')).toBe('failed');
    expect(await card.locator('tbody tr').count()).toBe(2);
    expect(await card.locator('tbody tr').first().textContent()).toContain('HTTP 500');
    expect(await card.locator('.excerpt').first().textContent()).toBe('upstream exploded <b>500</b>');
    await screenshot(page, 'deliveries');

    failing = false;
    await Promise.all([
      page.waitForURL(/notice=replayed/),
      card.getByRole('button', { name: /^Replay delivery/ }).click(),
    ]);
    expect(await page.getByRole('status').textContent()).toBe('The delivery is queued again.');
    const row = await waitFor(
      async () => {
        const found = await h.db('deliveries').where({ id }).first();
        return found?.state === 'succeeded' ? found : null;
      },
      15_000,
      'replayed',
    );
    expect(row.chain).toBe(2);
    expect(target.requests.length).toBeGreaterThan(callsBefore);
    // A delivery that did not fail is not replayed.
    const again = await page.evaluate(async (action) => {
      const form = document.querySelector('form[action$="/sign-out"]')!;
      const body = new URLSearchParams({ _csrf: (form.querySelector('input[name=_csrf]') as HTMLInputElement).value });
      return (await fetch(action, { method: 'POST', body })).status;
    }, `/console/bots/${botId}/deliveries/${id}/replay`);
    expect(again).toBe(409);
    await context.close();
  });

  it('names a bad state filter', async () => {
    const { context, page } = await signedIn(browser, h.baseUrl);
    const response = await page.goto(`/console/bots/${botId}/deliveries?state=lost`);
    expect(response!.status()).toBe(400);
    expect(await page.getByRole('alert').textContent()).toContain('state');
    await context.close();
  });
});

describe('at a phone’s width', () => {
  it('no main page scrolls sideways', async () => {
    const context = await newContext(browser, h.baseUrl, { width: 375, height: 800 });
    const page = await context.newPage();
    await page.goto('/console/sign-in');
    expect(await scrollsSideways(page)).toBe(false);
    await signIn(page);
    for (const path of [
      '/console/bots',
      `/console/bots/${botId}`,
      `/console/bots/${botId}/script`,
      `/console/bots/${botId}/deliveries`,
    ]) {
      await page.goto(path);
      expect(await scrollsSideways(page), path).toBe(false);
    }
    await page.goto(`/console/bots/${botId}`);
    await screenshot(page, 'bot-phone');
    await context.close();
  });
});
