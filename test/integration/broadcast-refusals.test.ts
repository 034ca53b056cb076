import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createScriptedBot,
  dialogOf,
  messagesTo,
  sendUpdate,
  waitForMessages,
  type TestBot,
} from '../support/bot-scripts.js';
import type { BroadcastProgress } from '../../src/http/routes/broadcasts.js';
import { waitForBroadcast } from '../support/broadcasts.js';
import { fakeApiError, fakeUpdates } from '../support/fake-telegram.js';
import { startHarness, waitFor, type Harness } from '../support/harness.js';

// A file (so a database) of its own: every worker tier sweeps its whole database for broadcasts to run.

const SCRIPT = {
  start: 'hello',
  steps: [
    { key: 'hello', type: 'send_message', text: 'Hello!', next: 'ask' },
    { key: 'ask', type: 'input', text: 'Your e-mail?', field: 'email' },
  ],
};

let chat = 970_000;

describe('broadcasts when Telegram refuses part of a message, or the bot itself', () => {
  // Its fake Bot API fails the second part of long messages while `failSecondPart` is set.
  let own: Harness;
  let failSecondPart = false;
  beforeAll(async () => {
    own = await startHarness({
      workers: true,
      env: {
        PUBLIC_URL: 'https://flowpost.test',
        TELEGRAM_BOT_RATE_LIMIT: '10',
        QUEUE_LOCK_MS: '2000',
      },
    });
    const partsSeen = new Map<number, number>();
    let messageId = 1;
    own.telegram.handle('sendMessage', (params) => {
      const chatId = Number(params.chat_id);
      const text = String(params.text);
      // The part after a long text's first (which starts "Long") is refused with a long 429.
      if (failSecondPart && partsSeen.get(chatId) === 1) {
        partsSeen.set(chatId, 2);
        throw fakeApiError({
          error_code: 429,
          description: 'Too Many Requests: retry after 120',
          parameters: { retry_after: 120 },
        });
      }
      if (failSecondPart && text.startsWith('Long')) partsSeen.set(chatId, 1);
      return {
        message_id: messageId++,
        date: Math.floor(Date.now() / 1000),
        chat: { id: chatId, type: 'private' },
        text,
      };
    });
  }, 60_000);
  afterAll(async () => {
    await own?.close();
  });

  async function started(target: TestBot, count: number): Promise<number[]> {
    const chats = Array.from({ length: count }, () => chat++);
    for (const chatId of chats) await sendUpdate(own, target, fakeUpdates.start(chatId));
    for (const chatId of chats) await waitForMessages(own, target, chatId, 2, 20_000);
    return chats;
  }

  it('a long text whose second part is refused is counted failed, never sent again', async () => {
    const target = await createScriptedBot(own, SCRIPT);
    const [chatId] = await started(target, 1);
    failSecondPart = true;
    try {
      // Rendered, the text is longer than one Telegram message: it goes in two parts.
      const long = 'word '.repeat(700);
      expect(
        (await own.api('PATCH', `/api/v1/bots/${target.botId}/dialogs/${chatId}`, { fields: { a: long, b: long } }))
          .status,
      ).toBe(202);
      await waitFor(async () => ((await dialogOf(own, target, chatId!))?.fields.b ? true : null), 10_000, 'fields');
      const text = 'Long {{fields.a}} {{fields.b}}';
      const created = await own.api('POST', `/api/v1/bots/${target.botId}/broadcasts`, { text });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      const done = await waitForBroadcast(own, target, created.body.id, (p) => p.state === 'done', 'done', 30_000);
      expect(done).toMatchObject({ planned: 1, sent: 0, failed: 1 });
      const row = await own.db('broadcast_recipients').where({ broadcast_id: created.body.id }).first();
      expect(row.error).toMatch(/sent 1 part\(s\), then 429/);
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      const calls = messagesTo(own, target, chatId!).slice(2); // after the script's two
      expect(calls.map((c) => [String(c.params.text).slice(0, 4), c.status])).toEqual([
        ['Long', 200],
        ['word', 429],
      ]);
    } finally {
      failSecondPart = false;
    }
  });

  it('a bot Telegram refuses (its token revoked) fails nobody: the broadcast waits, and goes on once the bot is accepted again', async () => {
    const target = await createScriptedBot(own, SCRIPT);
    const chats = await started(target, 5);
    own.telegram.rejectToken(target.token);
    const created = await own.api('POST', `/api/v1/bots/${target.botId}/broadcasts`, { text: 'News while refused' });
    const id = created.body.id as string;
    await waitFor(
      async () => (own.telegram.callsOf('sendMessage', target.token).some((c) => c.status === 401) ? true : null),
      15_000,
      'a refused send',
    );
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const meanwhile = (await own.api('GET', `/api/v1/bots/${target.botId}/broadcasts/${id}`)).body as BroadcastProgress;
    expect(meanwhile).toMatchObject({ state: 'running', failed: 0, sent: 0 });
    own.telegram.acceptToken(target.token);
    const done = await waitForBroadcast(own, target, id, (p) => p.state === 'done', 'done once accepted', 30_000);
    expect(done).toMatchObject({ planned: 5, sent: 5, failed: 0 });
    for (const chatId of chats) {
      const got = messagesTo(own, target, chatId).filter(
        (c) => c.status === 200 && c.params.text === 'News while refused',
      );
      expect(got, `chat ${chatId}`).toHaveLength(1);
    }
  });
});
