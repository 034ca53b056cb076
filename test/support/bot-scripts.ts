import { expect } from 'vitest';
import type { FakeCall } from './fake-telegram.js';
import type { Harness } from './harness.js';

let nextUpdateId = 1000;
let nextToken = 7_000_000;

export interface TestBot {
  botId: string;
  token: string;
  secret: string;
  postbackUrl: string;
  steps: Map<string, string>;
}

/** Creates a bot with a Telegram token (connected through the harness's fake Bot API), a postback URL and a script. */
export async function createScriptedBot(
  h: Harness,
  script: object,
  options: { timezone?: string } = {},
): Promise<TestBot> {
  const token = `${nextToken++}:AAH-fake-token-for-tests-${Math.random().toString(36).slice(2, 10)}`;
  const bot = await h.api('POST', '/api/v1/bots', { name: 'scripted', telegramToken: token, ...options });
  expect(bot.status, JSON.stringify(bot.body)).toBe(201);
  const webhook = await h.api('POST', `/api/v1/bots/${bot.body.id}/webhooks`, { name: 'tracker' });
  const uploaded = await h.api('PUT', `/api/v1/bots/${bot.body.id}/script`, script);
  expect(uploaded.status, JSON.stringify(uploaded.body)).toBe(200);
  const row = await h.db('bots').where({ id: bot.body.id }).first('telegram_secret');
  return {
    botId: bot.body.id,
    token,
    secret: row.telegram_secret,
    postbackUrl: webhook.body.url.replace(h.config.publicUrl, h.baseUrl),
    steps: new Map(uploaded.body.steps.map((s: { key: string; id: string }) => [s.key, s.id])),
  };
}

/** Delivers an update as Telegram's webhook would. */
export async function sendUpdate(
  h: Harness,
  bot: TestBot,
  update: Record<string, unknown>,
  secret = bot.secret,
): Promise<Response> {
  return fetch(`${h.baseUrl}/telegram/${bot.botId}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': secret },
    body: JSON.stringify({ update_id: nextUpdateId++, ...update }),
  });
}

/** Every message the bot sent to a chat, in order. */
export function messagesTo(h: Harness, bot: TestBot, chatId: number): FakeCall[] {
  return h.telegram.callsOf('sendMessage', bot.token).filter((call) => Number(call.params.chat_id) === chatId);
}

export async function waitForMessages(
  h: Harness,
  bot: TestBot,
  chatId: number,
  count: number,
  timeoutMs = 10_000,
): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const texts = messagesTo(h, bot, chatId).map((call) => String(call.params.text));
    if (texts.length >= count) return texts;
    if (Date.now() > deadline) throw new Error(`expected ${count} messages to ${chatId}, got ${JSON.stringify(texts)}`);
    await new Promise((resolve) => setTimeout(resolve, 5)); // reads the fake's in-memory calls only
  }
}

export async function dialogOf(h: Harness, bot: TestBot, chatId: number) {
  const res = await h.api('GET', `/api/v1/bots/${bot.botId}/dialogs/${chatId}`);
  return res.status === 200 ? res.body : null;
}
