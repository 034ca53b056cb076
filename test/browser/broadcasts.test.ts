import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createScriptedBot, messagesTo, sendUpdate, waitForMessages, type TestBot } from '../support/bot-scripts.js';
import { launchBrowser, screenshot, scrollsSideways, signedIn } from '../support/browser.js';
import { fakeUpdates } from '../support/fake-telegram.js';
import { startHarness, waitFor, type Harness } from '../support/harness.js';

// The bot may send 4 messages a second: a broadcast to a dozen dialogs runs for seconds, long
// enough to pause it from the page.
let h: Harness;
let browser: Browser;
let bot: TestBot;
const chats: number[] = [];

beforeAll(async () => {
  h = await startHarness({
    workers: true,
    env: { PUBLIC_URL: 'https://flowpost.test', TELEGRAM_BOT_RATE_LIMIT: '4' },
  });
  browser = await launchBrowser();
  bot = await createScriptedBot(h, {
    start: 'hello',
    steps: [{ key: 'hello', type: 'send_message', text: 'Hello!' }],
  });
  for (let i = 0; i < 12; i++) {
    const chatId = 9_400_000 + Math.floor(Math.random() * 100_000) * 10 + i;
    chats.push(chatId);
    await sendUpdate(
      h,
      bot,
      fakeUpdates.start(chatId, undefined, fakeUpdates.user(chatId, { first_name: `Reader${i}` })),
    );
  }
  for (const chatId of chats) await waitForMessages(h, bot, chatId, 1, 20_000);
  for (const chatId of chats.slice(0, 10)) {
    expect((await h.api('PATCH', `/api/v1/bots/${bot.botId}/dialogs/${chatId}`, { addTags: ['lead'] })).status).toBe(
      202,
    );
  }
  await waitFor(
    async () => {
      const tagged = await h
        .db('dialogs')
        .where({ bot_id: bot.botId })
        .whereRaw("tags @> array['lead']")
        .count('* as n');
      return Number((tagged[0] as { n: string }).n) === 10 ? true : null;
    },
    10_000,
    'tags',
  );
}, 90_000);
afterAll(async () => {
  await browser?.close();
  await h?.close();
});

const news = (chatId: number) =>
  messagesTo(h, bot, chatId)
    .map((call) => String(call.params.text))
    .filter((text) => text.startsWith('News'));

async function card(page: Page) {
  return page.locator('li.broadcast').first();
}

describe('the console’s broadcasts page', () => {
  it('starts a broadcast to tagged dialogs, shows a template problem beside the form, pauses and resumes it', async () => {
    const { context, page } = await signedIn(browser, h.baseUrl);
    await page.goto(`${h.baseUrl}/console/bots/${bot.botId}`);
    await page.getByRole('link', { name: 'Broadcasts' }).click();
    expect(new URL(page.url()).pathname).toBe(`/console/bots/${bot.botId}/broadcasts`);

    // A broken template: refused, named, and what was typed is kept.
    await page.getByLabel('Message').fill('News for {{#if}}');
    await page.getByLabel(/Audience: tags/).fill('lead');
    await page.getByRole('button', { name: 'Start broadcast' }).click();
    await expect(page.getByRole('alert').textContent()).resolves.toMatch(/text/);
    expect(await page.getByLabel('Message').inputValue()).toBe('News for {{#if}}');
    expect(await page.locator('li.broadcast').count()).toBe(0);

    await page.getByLabel('Message').fill('News for {{name}}');
    await page.getByLabel('Button text (optional)').fill('Open');
    await page.getByLabel('Button link (optional)').fill('https://offer.example/?c={{chatId}}');
    await page.getByRole('button', { name: 'Start broadcast' }).click();
    expect(await page.getByText('Saved.').count()).toBe(1);
    const first = await card(page);
    await waitFor(async () => ((await first.getAttribute('data-state')) ? true : null));

    // Pause it from the page once a few went out; the sends stop.
    await waitFor(async () => (chats.filter((c) => news(c).length > 0).length >= 2 ? true : null), 15_000, 'some sent');
    await Promise.all([page.waitForEvent('load'), page.getByRole('button', { name: /^Pause broadcast/ }).click()]);
    expect(await (await card(page)).getAttribute('data-state')).toBe('paused');
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const sentWhilePaused = chats.filter((c) => news(c).length > 0).length;
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(chats.filter((c) => news(c).length > 0).length).toBe(sentWhilePaused);
    expect(sentWhilePaused).toBeLessThan(10);
    await page.reload();
    expect(await page.locator('li.broadcast dd').nth(1).textContent()).toBe(String(sentWhilePaused));
    await screenshot(page, 'broadcasts');

    await Promise.all([page.waitForEvent('load'), page.getByRole('button', { name: /^Resume broadcast/ }).click()]);
    await waitFor(
      async () => {
        await page.reload();
        return (await (await card(page)).getAttribute('data-state')) === 'done' ? true : null;
      },
      20_000,
      'done',
    );
    // The ten tagged dialogs got it once each, rendered for each; the two others none.
    for (const [i, chatId] of chats.entries()) {
      expect(news(chatId), `chat ${chatId}`).toEqual(i < 10 ? [`News for Reader${i} User`] : []);
    }
    const text = (await (await card(page)).textContent()) ?? '';
    expect(text).toMatch(/Sent\s*10/);
    expect(text).toMatch(/Remaining\s*0/);

    // No actions offered on a done broadcast; at a phone's width nothing scrolls sideways.
    expect(await page.getByRole('button', { name: /^(Pause|Resume|Cancel) broadcast/ }).count()).toBe(0);
    await page.setViewportSize({ width: 375, height: 800 });
    expect(await scrollsSideways(page)).toBe(false);
    await context.close();
  });
});
