import { randomBytes } from 'node:crypto';
import type { Browser, Page } from 'playwright-core';
import { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/config/log.js';
import { startWebTier } from '../../src/http/server.js';
import {
  createScriptedBot,
  dialogOf,
  messagesTo,
  sendUpdate,
  waitForMessages,
  type TestBot,
} from '../support/bot-scripts.js';
import { launchBrowser, screenshot, scrollsSideways, sessionCookie, signedIn } from '../support/browser.js';
import { fakeUpdates } from '../support/fake-telegram.js';
import { startHarness, waitFor, type Harness } from '../support/harness.js';

let h: Harness;
let browser: Browser;
let bot: TestBot;

const SCRIPT = {
  start: 'hello',
  steps: [
    { key: 'hello', type: 'send_message', text: 'Hello!', next: 'ask' },
    { key: 'ask', type: 'input', text: 'Your e-mail?', field: 'email', next: 'thanks' },
    { key: 'thanks', type: 'send_message', text: 'Thanks' },
  ],
};

const suffix = randomBytes(3).toString('hex');
const alice = {
  chatId: 9_310_000 + Math.floor(Math.random() * 10_000),
  username: `alice_${suffix}`,
  first_name: 'Alice',
};
const bob = { chatId: alice.chatId + 20_000, username: `bob_${suffix}`, first_name: 'Bob' };

async function startDialog(user: typeof alice): Promise<void> {
  const from = fakeUpdates.user(user.chatId, {
    username: user.username,
    first_name: user.first_name,
    last_name: 'Tester',
  });
  expect((await sendUpdate(h, bot, fakeUpdates.start(user.chatId, undefined, from))).status).toBe(200);
  await waitForMessages(h, bot, user.chatId, 2);
}

beforeAll(async () => {
  h = await startHarness({ workers: true, env: { PUBLIC_URL: 'https://flowpost.test' } });
  browser = await launchBrowser();
  bot = await createScriptedBot(h, SCRIPT);
  await startDialog(alice);
  await startDialog(bob);
  // A tracker's postback gives Alice's dialog a field, a tracker field and tags.
  const postback = await fetch(
    `${bot.postbackUrl}?chatId=${alice.chatId}&fields.plan=gold&tracker.source=spring_ads&tags=vip,returning`,
  );
  expect(postback.status).toBe(202);
  await waitFor(async () => (await dialogOf(h, bot, alice.chatId))?.tags.includes('vip'), 10_000, 'the postback');
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await h?.close();
});

const dialogUrl = (chatId: number) => `/console/bots/${bot.botId}/dialogs/${chatId}`;

async function statusBadge(page: Page): Promise<string | null> {
  return page.locator('#dialog-status').textContent();
}

async function dialogStatus(chatId: number, status: string): Promise<void> {
  await waitFor(async () => (await dialogOf(h, bot, chatId))?.status === status, 10_000, `dialog ${chatId} ${status}`);
}

/** Reads a server-sent event stream until `until` holds for what arrived; aborts it then. */
async function readEvents(
  url: string,
  headers: Record<string, string>,
  until: (text: string) => boolean,
): Promise<{ status: number; type: string | null; text: string }> {
  // Its own connection pool, closed after: an aborted stream leaves no socket behind to hold up the web tier's close.
  const dispatcher = new Agent();
  const abort = new AbortController();
  const response = await fetch(url, { headers, signal: abort.signal, redirect: 'manual', dispatcher } as RequestInit);
  let text = '';
  if (response.status === 200) {
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    const deadline = Date.now() + 10_000;
    while (!until(text) && Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
  }
  abort.abort();
  await dispatcher.destroy();
  return { status: response.status, type: response.headers.get('content-type'), text };
}

function lineEvents(text: string): Array<{ id: string; data: Record<string, string> }> {
  return text
    .split('\n\n')
    .filter((block) => block.includes('event: line'))
    .map((block) => ({
      id: /^id: (.*)$/m.exec(block)![1]!,
      data: JSON.parse(/^data: (.*)$/m.exec(block)![1]!) as Record<string, string>,
    }));
}

describe('a dialog, driven in the console', () => {
  // A journey of a dozen live waits, each bounded (10 s): on a loaded machine they add up.
  it('is found by username, taken over, answered, followed live and handed back', async () => {
    const { context, page } = await signedIn(browser, h.baseUrl);
    await page.getByRole('link', { name: 'scripted' }).first().click();
    await page.waitForURL(new RegExp(`/console/bots/${bot.botId}$`));
    await Promise.all([page.waitForURL(/\/dialogs$/), page.getByRole('link', { name: 'Dialogs' }).click()]);
    expect(await page.locator('.dialog-row').count()).toBe(2);
    await screenshot(page, 'dialogs');

    await page.getByLabel('Name or username').fill(alice.username);
    await Promise.all([page.waitForURL(/q=/), page.getByRole('button', { name: 'Filter' }).click()]);
    expect(new URL(page.url()).searchParams.get('q')).toBe(alice.username);
    const rows = page.locator('.dialog-row');
    expect(await rows.count()).toBe(1);
    expect(await rows.first().getAttribute('data-chat-id')).toBe(String(alice.chatId));
    expect(await rows.first().textContent()).toContain(`@${alice.username}`);
    // The form keeps what it filtered by.
    expect(await page.getByLabel('Name or username').inputValue()).toBe(alice.username);

    await Promise.all([page.waitForURL(/\/dialogs\/\d+$/), rows.first().getByRole('link').click()]);
    expect(new URL(page.url()).pathname).toBe(dialogUrl(alice.chatId));
    expect(await statusBadge(page)).toBe('auto');
    expect(await page.locator('#dialog-step').textContent()).toBe('ask');
    const transcript = page.locator('ol.transcript');
    expect(await transcript.getAttribute('aria-live')).toBe('polite');
    expect(await transcript.locator('li .who').allTextContents()).toEqual(['User', 'Script', 'Script']);
    expect(await transcript.locator('.line-text').allTextContents()).toEqual(['/start', 'Hello!', 'Your e-mail?']);
    expect(await page.getByLabel('Reply').count()).toBe(0);
    expect(await page.locator('section[aria-labelledby="fields-heading"] dl').textContent()).toMatch(/plan\s*gold/);
    expect(await page.locator('section[aria-labelledby="tracker-heading"] dl').textContent()).toMatch(
      /source\s*spring_ads/,
    );
    expect(await page.locator('section[aria-labelledby="tags-heading"] li').allTextContents()).toEqual([
      'returning',
      'vip',
    ]);
    expect(await page.locator('section[aria-labelledby="conversions-heading"]').textContent()).toContain(
      'No conversions.',
    );

    // Take over: queued, then the live stream sees `manual` and the page shows the reply box.
    await Promise.all([page.waitForURL(/notice=queued/), page.getByRole('button', { name: 'Take over' }).click()]);
    expect(await page.getByRole('status').textContent()).toContain('Queued');
    await page.getByLabel('Reply').waitFor({ timeout: 10_000 });
    expect(await statusBadge(page)).toBe('manual');
    expect(await page.getByRole('button', { name: 'Take over' }).count()).toBe(0);
    await dialogStatus(alice.chatId, 'manual');

    // From here on this page is not loaded again: what it shows next arrives live. The reply is
    // sent from a second tab, so that it is certainly not in this page's first render.
    await page.evaluate(() => ((window as unknown as { sameLoad: boolean }).sameLoad = true));
    const tab = await context.newPage();
    await tab.goto(dialogUrl(alice.chatId));
    await tab.getByLabel('Reply').fill('Hello from the operator <3');
    await Promise.all([tab.waitForURL(/notice=queued/), tab.getByRole('button', { name: 'Send' }).click()]);
    expect(await tab.getByRole('status').textContent()).toContain('Queued');
    await tab.close();
    const texts = await waitForMessages(h, bot, alice.chatId, 3);
    expect(texts[2]).toBe('Hello from the operator &lt;3');
    expect(messagesTo(h, bot, alice.chatId)[2]!.params.parse_mode).toBe('HTML');
    const operatorLine = transcript.locator('li.from-operator');
    await operatorLine.waitFor({ timeout: 10_000 });
    expect(await operatorLine.locator('.who').textContent()).toBe('Operator');
    expect(await operatorLine.locator('.line-text').textContent()).toBe('Hello from the operator <3');
    expect(await page.evaluate(() => (window as unknown as { sameLoad?: boolean }).sameLoad)).toBe(true);
    await screenshot(page, 'dialog');

    // The user's answer, through the Telegram webhook, appears without a reload.
    expect((await sendUpdate(h, bot, fakeUpdates.text(alice.chatId, 'Is anyone <there>?'))).status).toBe(200);
    const userLine = transcript.locator('li.from-user').last();
    await waitFor(
      async () => (await userLine.locator('.line-text').textContent()) === 'Is anyone <there>?',
      10_000,
      'the live line',
    );
    expect(await userLine.locator('.who').textContent()).toBe('User');
    expect(await page.evaluate(() => (window as unknown as { sameLoad?: boolean }).sameLoad)).toBe(true);
    // Each line once, in order.
    expect(await transcript.locator('.line-text').allTextContents()).toEqual([
      '/start',
      'Hello!',
      'Your e-mail?',
      'Hello from the operator <3',
      'Is anyone <there>?',
    ]);

    // Hand back at the input step: the script asks again, the reply box goes.
    await page.getByLabel('Hand back at step').selectOption('ask');
    await Promise.all([page.waitForURL(/notice=queued/), page.getByRole('button', { name: 'Hand back' }).click()]);
    await page.getByRole('button', { name: 'Take over' }).waitFor({ timeout: 10_000 });
    expect(await statusBadge(page)).toBe('auto');
    expect(await page.getByLabel('Reply').count()).toBe(0);
    await dialogStatus(alice.chatId, 'auto');
    expect((await waitForMessages(h, bot, alice.chatId, 4))[3]).toBe('Your e-mail?');
    await context.close();
  }, 60_000);
});

describe('at a phone’s width', () => {
  it('the list and a dialog do not scroll sideways; the reply form is reached by keyboard and labelled', async () => {
    expect((await h.api('POST', `/api/v1/bots/${bot.botId}/dialogs/${bob.chatId}/takeover`)).status).toBe(202);
    await dialogStatus(bob.chatId, 'manual');
    const { context, page } = await signedIn(browser, h.baseUrl, { width: 375, height: 800 });
    await page.goto(`/console/bots/${bot.botId}/dialogs`);
    expect(await scrollsSideways(page)).toBe(false);
    await screenshot(page, 'dialogs-phone');
    await page.goto(`/console/bots/${bot.botId}/dialogs?status=manual`);
    expect(await page.locator('.dialog-row').getAttribute('data-chat-id')).toBe(String(bob.chatId));
    expect(await page.getByLabel('Status').inputValue()).toBe('manual');
    // The form's empty fields are "any"; a tag filters as the API's does.
    await page.getByLabel('Status').selectOption('');
    await page.getByLabel('Tag').fill('vip');
    await Promise.all([page.waitForURL(/tag=vip/), page.getByRole('button', { name: 'Filter' }).click()]);
    expect(await page.locator('.dialog-row').getAttribute('data-chat-id')).toBe(String(alice.chatId));
    expect(await page.locator('.dialog-row .tags li').allTextContents()).toEqual(['returning', 'vip']);

    await page.goto(dialogUrl(bob.chatId));
    expect(await scrollsSideways(page)).toBe(false);
    expect(await page.getByLabel('Reply').count()).toBe(1);
    expect(await page.getByLabel('Hand back at step').count()).toBe(1);
    await screenshot(page, 'dialog-phone');

    await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
    const focused: string[] = [];
    for (let i = 0; i < 30; i++) {
      await page.keyboard.press('Tab');
      focused.push(
        await page.evaluate(() => document.activeElement?.id || document.activeElement?.textContent?.trim() || ''),
      );
    }
    expect(focused).toContain('reply-text');
    expect(focused).toContain('Send');
    expect(focused.indexOf('Send')).toBeGreaterThan(focused.indexOf('reply-text'));
    expect(focused).toContain('release-step');
    await context.close();
  });
});

describe('the console’s dialog routes', () => {
  it('refuse the event stream without a session and a form without its CSRF token', async () => {
    const events = await fetch(`${h.baseUrl}${dialogUrl(alice.chatId)}/events`, { redirect: 'manual' });
    expect(events.status).toBe(303);
    expect(events.headers.get('location')).toMatch(/^\/console\/sign-in/);

    const { context } = await signedIn(browser, h.baseUrl);
    const cookie = await sessionCookie(context);
    const post = (body: string) =>
      fetch(`${h.baseUrl}${dialogUrl(bob.chatId)}/reply`, {
        method: 'POST',
        redirect: 'manual',
        headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
        body,
      });
    const missing = await post('text=sneaky');
    expect(missing.status).toBe(403);
    expect(await missing.text()).toContain('security token is missing or stale');
    expect((await post(`_csrf=${'0'.repeat(64)}&text=sneaky`)).status).toBe(403);
    expect(messagesTo(h, bot, bob.chatId).map((call) => call.params.text)).not.toContain('sneaky');
    await context.close();
  });

  it('page the list with a Next page link that keeps the filters', async () => {
    const { context, page } = await signedIn(browser, h.baseUrl);
    await page.goto(`/console/bots/${bot.botId}/dialogs?limit=1&started=true`);
    const firstPage = await page.locator('.dialog-row').getAttribute('data-chat-id');
    expect(await page.locator('.dialog-row').count()).toBe(1);
    await Promise.all([page.waitForURL(/cursor=/), page.getByRole('link', { name: 'Next page' }).click()]);
    const params = new URL(page.url()).searchParams;
    expect([params.get('limit'), params.get('started')]).toEqual(['1', 'true']);
    const secondPage = await page.locator('.dialog-row').getAttribute('data-chat-id');
    expect([firstPage, secondPage].sort()).toEqual([String(alice.chatId), String(bob.chatId)].sort());
    expect(await page.getByRole('link', { name: 'Next page' }).count()).toBe(0);
    await context.close();
  });

  it('answer a bad chat id with 400 and an unknown dialog with 404, naming chatId', async () => {
    const { context, page } = await signedIn(browser, h.baseUrl);
    const bad = await page.goto(`/console/bots/${bot.botId}/dialogs/12ab`);
    expect(bad!.status()).toBe(400);
    expect(await page.getByRole('alert').textContent()).toContain('chatId');
    const unknown = await page.goto(dialogUrl(1));
    expect(unknown!.status()).toBe(404);
    expect(await page.getByRole('alert').textContent()).toContain('chatId');
    const badFilter = await page.goto(`/console/bots/${bot.botId}/dialogs?status=lost`);
    expect(badFilter!.status()).toBe(400);
    expect(await page.getByRole('alert').textContent()).toContain('status');
    await context.close();
  });

  it('stream the transcript as server-sent events, resuming after Last-Event-ID', async () => {
    const { context } = await signedIn(browser, h.baseUrl);
    const cookie = await sessionCookie(context);
    const url = `${h.baseUrl}${dialogUrl(bob.chatId)}/events`;
    const first = await readEvents(
      url,
      { cookie },
      (text) => lineEvents(text).length >= 3 && text.includes('event: dialog'),
    );
    expect(first.status).toBe(200);
    expect(first.type).toMatch(/^text\/event-stream/);
    const lines = lineEvents(first.text);
    expect(lines.map((line) => [line.data.sender, line.data.who, line.data.text])).toEqual([
      ['user', 'User', '/start'],
      ['script', 'Script', 'Hello!'],
      ['script', 'Script', 'Your e-mail?'],
    ]);
    expect(lines.every((line) => line.id === line.data.id)).toBe(true);
    const { status } = await dialogOf(h, bot, bob.chatId);
    expect(first.text).toContain(`event: dialog\ndata: ${JSON.stringify({ status, stepKey: 'ask' })}`);

    const resumed = await readEvents(url, { cookie, 'last-event-id': lines[1]!.id }, (text) =>
      text.includes('event: line'),
    );
    expect(lineEvents(resumed.text).map((line) => line.data.text)).toEqual(['Your e-mail?']);
    const after = await readEvents(`${url}?after=${lines[2]!.id}`, { cookie }, (text) =>
      text.includes('event: dialog'),
    );
    expect(lineEvents(after.text)).toEqual([]);
    const refused = await fetch(`${url}?after=x`, { headers: { cookie } });
    expect(refused.status).toBe(400);
    await context.close();
  });

  it('an open stream does not hold up a web tier’s close', async () => {
    const web = await startWebTier(h.config, h.db, createLogger('silent'));
    const { context } = await signedIn(browser, h.baseUrl);
    const cookie = await sessionCookie(context);
    const abort = new AbortController();
    const response = await fetch(`http://127.0.0.1:${web.port}${dialogUrl(bob.chatId)}/events`, {
      headers: { cookie },
      signal: abort.signal,
    });
    expect(response.status).toBe(200);
    const reader = response.body!.getReader();
    await reader.read();
    const started = Date.now();
    await web.close();
    // Without ending its streams the close waits for the drain limit (20 s).
    expect(Date.now() - started).toBeLessThan(5_000);
    let done = false;
    while (!done) done = (await reader.read()).done;
    abort.abort();
    await context.close();
  });
});
