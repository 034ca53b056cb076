import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createScriptedBot, sendUpdate, type TestBot } from '../support/bot-scripts.js';
import { fakeApiError, fakeUpdates, type FakeApiError } from '../support/fake-telegram.js';
import { startHarness, waitFor, type Harness } from '../support/harness.js';

/**
 * Telegram failing, retryably, more often than the sender tries in place (4 times, with backoff):
 * the sender gives up, so the input is tried again. (A 429 would hold the whole bot for its
 * retry_after instead.)
 */
const UNAVAILABLE: FakeApiError = { error_code: 502, description: 'Bad Gateway' };
const SENDER_ATTEMPTS = 4;

interface Sent {
  chatId: number;
  text: string;
  messageId: number;
}

let h: Harness;
/** Every message the fake Bot API acknowledged, with the id it answered. */
const sent: Sent[] = [];
/** Texts whose sends fail (as many times as the sender tries at once), per chat: the input fails once. */
const failOnce: Array<{ chatId: number; text: string; left: number }> = [];

beforeAll(async () => {
  h = await startHarness({
    workers: true,
    env: { PUBLIC_URL: 'https://flowpost.test', TELEGRAM_CHAT_RATE_LIMIT: '0' },
  });
  let messageId = 7_000_000;
  h.telegram.handle('sendMessage', (params, token) => {
    const chatId = Number(params.chat_id);
    const text = String(params.text);
    const failure = failOnce.findIndex((f) => f.chatId === chatId && f.text === text);
    if (failure >= 0) {
      if (--failOnce[failure]!.left === 0) failOnce.splice(failure, 1);
      throw fakeApiError(UNAVAILABLE);
    }
    const botId = Number(token.split(':')[0]);
    sent.push({ chatId, text, messageId: ++messageId });
    return {
      message_id: messageId,
      date: Math.floor(Date.now() / 1000),
      chat: { id: chatId, type: 'private', first_name: 'Test' },
      from: { id: botId, is_bot: true, first_name: `Bot ${botId}`, username: `bot${botId}` },
      text,
    };
  });
});
afterAll(async () => {
  await h?.close();
});

let chat = 930_000;
const nextChat = () => chat++;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Line {
  id: string;
  direction: string;
  sender: string;
  text: string | null;
  telegramMessageId: number | null;
  at: string;
}

async function transcript(bot: TestBot, chatId: number, query = ''): Promise<{ status: number; body: any }> {
  return h.api('GET', `/api/v1/bots/${bot.botId}/dialogs/${chatId}/messages${query}`);
}

async function lines(bot: TestBot, chatId: number): Promise<Line[]> {
  const res = await transcript(bot, chatId, '?limit=200');
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body.items as Line[];
}

async function waitForLines(bot: TestBot, chatId: number, count: number): Promise<Line[]> {
  return waitFor(
    async () => {
      const res = await transcript(bot, chatId, '?limit=200');
      if (res.status === 404) return null; // the /start not yet applied
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      const got = res.body.items as Line[];
      return got.length >= count ? got : null;
    },
    10_000,
    `${count} transcript lines of ${chatId}`,
  );
}

const sentTo = (chatId: number) => sent.filter((s) => s.chatId === chatId);

describe('dialog transcript', () => {
  it("records /start, the script's messages with Telegram's ids, the user's reply and a button press, oldest first", async () => {
    const bot = await createScriptedBot(h, {
      start: 'hello',
      steps: [
        { key: 'hello', type: 'send_message', text: 'Hello, {{name}}!', next: 'ask' },
        { key: 'ask', type: 'input', text: 'Your e-mail?', field: 'email', next: 'menu' },
        { key: 'menu', type: 'send_message', text: 'Pick', buttons: [{ text: 'Option A', next: 'a' }] },
        { key: 'a', type: 'send_message', text: 'You chose A' },
      ],
    });
    const chatId = nextChat();
    const start = fakeUpdates.start(chatId);
    await sendUpdate(h, bot, start);
    await waitForLines(bot, chatId, 3);
    const reply = fakeUpdates.text(chatId, 'a@b.example');
    await sendUpdate(h, bot, reply);
    await waitForLines(bot, chatId, 5);
    const menu = h.telegram.callsOf('sendMessage', bot.token).find((c) => c.params.text === 'Pick')!;
    const keyboard = menu.params.reply_markup as { inline_keyboard: Array<Array<{ callback_data: string }>> };
    const press = fakeUpdates.button(chatId, keyboard.inline_keyboard[0]![0]!.callback_data);
    (press.callback_query as { message: object }).message = {
      message_id: sentTo(chatId).find((s) => s.text === 'Pick')!.messageId,
      date: 0,
      chat: fakeUpdates.chat(chatId),
      text: 'Pick',
      reply_markup: menu.params.reply_markup,
    };
    await sendUpdate(h, bot, press);
    const got = await waitForLines(bot, chatId, 7);

    const ids = sentTo(chatId).map((s) => s.messageId);
    expect(
      got.map(({ direction, sender, text, telegramMessageId }) => ({ direction, sender, text, telegramMessageId })),
    ).toEqual([
      {
        direction: 'in',
        sender: 'user',
        text: '/start',
        telegramMessageId: (start.message as { message_id: number }).message_id,
      },
      { direction: 'out', sender: 'script', text: 'Hello, Test User!', telegramMessageId: ids[0] },
      { direction: 'out', sender: 'script', text: 'Your e-mail?', telegramMessageId: ids[1] },
      {
        direction: 'in',
        sender: 'user',
        text: 'a@b.example',
        telegramMessageId: (reply.message as { message_id: number }).message_id,
      },
      { direction: 'out', sender: 'script', text: 'Pick', telegramMessageId: ids[2] },
      { direction: 'in', sender: 'user', text: 'Option A', telegramMessageId: null },
      { direction: 'out', sender: 'script', text: 'You chose A', telegramMessageId: ids[3] },
    ]);
    expect(got.every((line) => /Z$/.test(line.at))).toBe(true);
    const order = got.map((line) => BigInt(line.id));
    expect([...order].sort((a, b) => (a < b ? -1 : 1))).toEqual(order);
  });

  it('records a long text Telegram got in several messages as one line per message', async () => {
    const bot = await createScriptedBot(h, {
      start: 'ask',
      steps: [
        { key: 'ask', type: 'input', text: 'Your story?', field: 'story', next: 'echo' },
        { key: 'echo', type: 'send_message', text: `${'p'.repeat(3800)}\n\n{{fields.story}}` },
      ],
    });
    const chatId = nextChat();
    await sendUpdate(h, bot, fakeUpdates.start(chatId));
    await waitForLines(bot, chatId, 2);
    await sendUpdate(h, bot, fakeUpdates.text(chatId, 'q'.repeat(1000)));
    const got = await waitForLines(bot, chatId, 5);
    const parts = sentTo(chatId).slice(1);
    expect(parts).toHaveLength(2);
    expect(got.slice(3).map((l) => ({ sender: l.sender, text: l.text, id: l.telegramMessageId }))).toEqual(
      parts.map((p) => ({ sender: 'script', text: p.text, id: p.messageId })),
    );
    await sleep(300);
    expect(await lines(bot, chatId)).toHaveLength(5);
  });

  it('an input tried again after a failed send records nothing twice', { timeout: 60_000 }, async () => {
    const bot = await createScriptedBot(h, {
      start: 'one',
      steps: [
        { key: 'one', type: 'send_message', text: 'ONE', next: 'two' },
        { key: 'two', type: 'send_message', text: 'TWO', next: 'ask' },
        { key: 'ask', type: 'input', text: 'Name?', field: 'n', next: 'three' },
        { key: 'three', type: 'send_message', text: 'THREE' },
      ],
    });
    const chatId = nextChat();
    failOnce.push({ chatId, text: 'TWO', left: SENDER_ATTEMPTS }, { chatId, text: 'THREE', left: SENDER_ATTEMPTS });
    await sendUpdate(h, bot, fakeUpdates.start(chatId));
    await waitFor(async () => sentTo(chatId).some((s) => s.text === 'Name?'), 25_000, 'the question sent');
    await sendUpdate(h, bot, fakeUpdates.text(chatId, 'Ann'));
    await waitFor(async () => sentTo(chatId).some((s) => s.text === 'THREE'), 25_000, 'the last message sent');
    await sleep(500);
    expect(failOnce.filter((f) => f.chatId === chatId)).toHaveLength(0); // both sends did fail once
    const got = await lines(bot, chatId);
    expect(got.map((l) => `${l.direction}/${l.sender}/${l.text}`)).toEqual([
      'in/user//start',
      'out/script/ONE',
      'out/script/TWO',
      'out/script/Name?',
      'in/user/Ann',
      'out/script/THREE',
    ]);
    expect(got.filter((l) => l.direction === 'out').map((l) => l.telegramMessageId)).toEqual(
      sentTo(chatId).map((s) => s.messageId),
    );
  });

  it('pages with an opaque cursor, oldest first', async () => {
    const bot = await createScriptedBot(h, {
      start: 'a',
      steps: [
        { key: 'a', type: 'send_message', text: 'A', next: 'b' },
        { key: 'b', type: 'send_message', text: 'B', next: 'c' },
        { key: 'c', type: 'send_message', text: 'C', next: 'd' },
        { key: 'd', type: 'send_message', text: 'D' },
      ],
    });
    const chatId = nextChat();
    await sendUpdate(h, bot, fakeUpdates.start(chatId));
    const all = await waitForLines(bot, chatId, 5);
    const first = await transcript(bot, chatId, '?limit=2');
    expect(first.status).toBe(200);
    expect(first.body.items.map((l: Line) => l.text)).toEqual(['/start', 'A']);
    expect(typeof first.body.nextCursor).toBe('string');
    const second = await transcript(bot, chatId, `?limit=2&cursor=${first.body.nextCursor}`);
    expect(second.body.items.map((l: Line) => l.text)).toEqual(['B', 'C']);
    const third = await transcript(bot, chatId, `?limit=2&cursor=${second.body.nextCursor}`);
    expect(third.body.items.map((l: Line) => l.text)).toEqual(['D']);
    expect(third.body.nextCursor).toBeNull();
    expect([...first.body.items, ...second.body.items, ...third.body.items]).toEqual(all);
    const whole = await transcript(bot, chatId);
    expect(whole.body).toEqual({ items: all, nextCursor: null });
  });

  it('answers 401 without the key, 400 naming a bad cursor or limit, 404 for an unknown chat', async () => {
    const bot = await createScriptedBot(h, { start: 'a', steps: [{ key: 'a', type: 'send_message', text: 'A' }] });
    const chatId = nextChat();
    await sendUpdate(h, bot, fakeUpdates.start(chatId));
    await waitForLines(bot, chatId, 2);
    const path = `/api/v1/bots/${bot.botId}/dialogs/${chatId}/messages`;
    expect((await fetch(`${h.baseUrl}${path}`)).status).toBe(401);
    expect((await fetch(`${h.baseUrl}${path}`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    for (const cursor of ['nonsense', '123', Buffer.from('m:abc').toString('base64url'), '']) {
      const res = await transcript(bot, chatId, `?cursor=${encodeURIComponent(cursor)}`);
      expect(res.status, cursor).toBe(400);
      expect(res.body.error.param, cursor).toBe('cursor');
    }
    for (const limit of ['0', '201', 'x', '-1', '1.5']) {
      const res = await transcript(bot, chatId, `?limit=${limit}`);
      expect(res.status, limit).toBe(400);
      expect(res.body.error.param, limit).toBe('limit');
    }
    const unknown = await transcript(bot, 1_999_999_999);
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('unknown_dialog');
    expect((await transcript(bot, Number.NaN)).status).toBe(400);
  });
});
