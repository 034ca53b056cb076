import { createServer, type Server } from 'node:http';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/config/log.js';
import { startWorkerTier } from '../../src/workers/worker-tier.js';
import { createScriptedBot, dialogOf, messagesTo, sendUpdate, waitForMessages } from '../support/bot-scripts.js';
import { fakeUpdates, TELEGRAM_ERRORS } from '../support/fake-telegram.js';
import { REDIS_URL, startHarness, waitFor, type Harness } from '../support/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({
    workers: true,
    env: { PUBLIC_URL: 'https://flowpost.test', TELEGRAM_CHAT_RATE_LIMIT: '0', OUTBOUND_ALLOW_CIDRS: '127.0.0.0/8' },
  });
});
afterAll(async () => {
  await h?.close();
});

let chat = 500_000;
const nextChat = () => chat++;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('bots on Telegram', () => {
  it('connects a bot with one getMe and registers its webhook with a secret', async () => {
    const bot = await createScriptedBot(h, { start: 'a', steps: [{ key: 'a', type: 'send_message', text: 'hi' }] });
    expect(h.telegram.callsOf('getMe', bot.token)).toHaveLength(1);
    const webhook = h.telegram.webhookOf(bot.token);
    expect(webhook?.url).toBe(`https://flowpost.test/telegram/${bot.botId}`);
    expect(webhook?.params.secret_token).toBe(bot.secret);
    const fetched = await h.api('GET', `/api/v1/bots/${bot.botId}`);
    expect(fetched.body.telegram.username).toMatch(/^bot\d+$/);
    expect(JSON.stringify(fetched.body)).not.toContain(bot.token);
  });

  it('refuses a token Telegram does not know with 422', async () => {
    const token = '999:AAH-refused-token-for-tests-xxxxxxxx';
    h.telegram.rejectToken(token);
    const res = await h.api('POST', '/api/v1/bots', { name: 'x', telegramToken: token });
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe('invalid_telegram_token');
    expect(JSON.stringify(res.body)).not.toContain(token);
  });

  it('answers 401 to a missing or wrong secret, and drops updates it cannot read', async () => {
    const bot = await createScriptedBot(h, { start: 'a', steps: [{ key: 'a', type: 'send_message', text: 'hi' }] });
    const chatId = nextChat();
    expect((await sendUpdate(h, bot, fakeUpdates.start(chatId), 'wrong')).status).toBe(401);
    const noHeader = await fetch(`${h.baseUrl}/telegram/${bot.botId}`, {
      method: 'POST',
      body: '{}',
      headers: { 'content-type': 'application/json' },
    });
    expect(noHeader.status).toBe(401);
    expect((await sendUpdate(h, bot, { something_new: { x: 1 } })).status).toBe(200);
    await sleep(300);
    expect(messagesTo(h, bot, chatId)).toHaveLength(0);
  });
});

describe('running scripts', () => {
  it('/start sends "Hello, {{name}}" and records the user', async () => {
    const bot = await createScriptedBot(h, {
      start: 'hello',
      steps: [{ key: 'hello', type: 'send_message', text: 'Hello, {{name}}!' }],
    });
    const chatId = nextChat();
    expect((await sendUpdate(h, bot, fakeUpdates.start(chatId))).status).toBe(200);
    expect(await waitForMessages(h, bot, chatId, 1)).toEqual(['Hello, Test User!']);
    const dialog = await dialogOf(h, bot, chatId);
    expect(dialog).toMatchObject({ username: `user${chatId}`, name: 'Test User', stepKey: 'hello', status: 'auto' });
    expect(dialog.startedAt).toMatch(/Z$/);
  });

  it('shows values a postback set before the user started in the first message, and starts at a preset step', async () => {
    const bot = await createScriptedBot(h, {
      start: 'hello',
      steps: [
        { key: 'hello', type: 'send_message', text: 'Hello' },
        { key: 'vip', type: 'send_message', text: 'Balance {{fields.userBalance}}, ref {refID}' },
      ],
    });
    const chatId = nextChat();
    expect((await fetch(`${bot.postbackUrl}?chatId=${chatId}&userBalance=5000&refID=12345&stepId=vip`)).status).toBe(
      202,
    );
    await waitFor(async () => (await dialogOf(h, bot, chatId))?.stepKey === 'vip');
    expect(messagesTo(h, bot, chatId)).toHaveLength(0); // not started: nothing is sent yet
    await sendUpdate(h, bot, fakeUpdates.start(chatId));
    expect(await waitForMessages(h, bot, chatId, 1)).toEqual(['Balance 5000, ref 12345']);
  });

  it("buttons: a press runs the button's next and answers the callback", async () => {
    const bot = await createScriptedBot(h, {
      start: 'menu',
      steps: [
        {
          key: 'menu',
          type: 'send_message',
          text: 'Pick',
          buttons: [
            { text: 'A', next: 'a' },
            { text: 'Site', url: 'https://example.com' },
            { text: 'B', next: 'b' },
          ],
        },
        { key: 'a', type: 'send_message', text: 'You chose A' },
        { key: 'b', type: 'send_message', text: 'You chose B' },
      ],
    });
    const chatId = nextChat();
    await sendUpdate(h, bot, fakeUpdates.start(chatId));
    await waitForMessages(h, bot, chatId, 1);
    const markup = messagesTo(h, bot, chatId)[0]!.params.reply_markup as {
      inline_keyboard: Array<Array<{ text: string; callback_data?: string; url?: string }>>;
    };
    const buttons = markup.inline_keyboard.flat();
    expect(buttons.map((b) => b.text)).toEqual(['A', 'Site', 'B']);
    expect(buttons[1]!.url).toBe('https://example.com');
    await sendUpdate(h, bot, fakeUpdates.button(chatId, buttons[2]!.callback_data!));
    expect(await waitForMessages(h, bot, chatId, 2)).toEqual(['Pick', 'You chose B']);
    await waitFor(async () => h.telegram.callsOf('answerCallbackQuery', bot.token).length > 0);
  });

  it('input: the reply is stored in its field and the script moves on', async () => {
    const bot = await createScriptedBot(h, {
      start: 'ask',
      steps: [
        { key: 'ask', type: 'input', text: 'Your e-mail?', field: 'email', next: 'thanks' },
        { key: 'thanks', type: 'send_message', text: 'Thanks, {{fields.email}}' },
      ],
    });
    const chatId = nextChat();
    await sendUpdate(h, bot, fakeUpdates.start(chatId));
    await waitForMessages(h, bot, chatId, 1);
    await sendUpdate(h, bot, fakeUpdates.text(chatId, 'a@b.example'));
    expect(await waitForMessages(h, bot, chatId, 2)).toEqual(['Your e-mail?', 'Thanks, a@b.example']);
    expect((await dialogOf(h, bot, chatId)).fields.email).toBe('a@b.example');
  });

  it('a short delay continues, and a dialog moved elsewhere meanwhile does not run the stale continuation', async () => {
    const bot = await createScriptedBot(h, {
      start: 'first',
      steps: [
        { key: 'first', type: 'send_message', text: 'one', next: 'wait' },
        { key: 'wait', type: 'delay', seconds: 1, next: 'second' },
        { key: 'second', type: 'send_message', text: 'two' },
        { key: 'other', type: 'send_message', text: 'elsewhere' },
      ],
    });
    const chatId = nextChat();
    await sendUpdate(h, bot, fakeUpdates.start(chatId));
    expect(await waitForMessages(h, bot, chatId, 2, 5_000)).toEqual(['one', 'two']);

    const moved = nextChat();
    await sendUpdate(h, bot, fakeUpdates.start(moved));
    await waitForMessages(h, bot, moved, 1);
    await fetch(`${bot.postbackUrl}?chatId=${moved}&stepId=other`);
    await waitForMessages(h, bot, moved, 2);
    await sleep(1_500);
    expect(messagesTo(h, bot, moved).map((c) => c.params.text)).toEqual(['one', 'elsewhere']);
  });

  it('condition branches, else, and no match → manual', async () => {
    const bot = await createScriptedBot(h, {
      start: 'check',
      steps: [
        {
          key: 'check',
          type: 'condition',
          branches: [
            { when: [{ subject: 'fields.userBalance', op: 'gt', value: 100 }], next: 'vip' },
            { when: [{ subject: 'tags', op: 'has', value: 'lead' }], next: 'lead' },
          ],
        },
        { key: 'vip', type: 'send_message', text: 'vip' },
        { key: 'lead', type: 'send_message', text: 'lead' },
      ],
    });
    const rich = nextChat();
    const lead = nextChat();
    const nobody = nextChat();
    await fetch(`${bot.postbackUrl}?chatId=${rich}&fields.userBalance=500`);
    await fetch(`${bot.postbackUrl}?chatId=${lead}&tags=lead`);
    await waitFor(async () => (await dialogOf(h, bot, rich)) && (await dialogOf(h, bot, lead)));
    for (const chatId of [rich, lead, nobody]) await sendUpdate(h, bot, fakeUpdates.start(chatId));
    expect(await waitForMessages(h, bot, rich, 1)).toEqual(['vip']);
    expect(await waitForMessages(h, bot, lead, 1)).toEqual(['lead']);
    await waitFor(async () => (await dialogOf(h, bot, nobody))?.status === 'manual');
    expect(messagesTo(h, bot, nobody)).toHaveLength(0);
  });

  it('A/B split sends users down both variants', async () => {
    const bot = await createScriptedBot(h, {
      start: 'split',
      steps: [
        {
          key: 'split',
          type: 'ab_split',
          variants: [
            { weight: 50, next: 'a' },
            { weight: 50, next: 'b' },
          ],
        },
        { key: 'a', type: 'send_message', text: 'A' },
        { key: 'b', type: 'send_message', text: 'B' },
      ],
    });
    const chats = Array.from({ length: 24 }, nextChat);
    for (const chatId of chats) await sendUpdate(h, bot, fakeUpdates.start(chatId));
    const texts = await Promise.all(chats.map(async (chatId) => (await waitForMessages(h, bot, chatId, 1))[0]));
    expect(new Set(texts)).toEqual(new Set(['A', 'B']));
  });

  it('blocked: a 403 from Telegram or a kick sets the dialog blocked', async () => {
    const bot = await createScriptedBot(h, { start: 'a', steps: [{ key: 'a', type: 'send_message', text: 'hi' }] });
    const refused = nextChat();
    h.telegram.failNext('sendMessage', TELEGRAM_ERRORS.blocked(), { chatId: refused });
    await sendUpdate(h, bot, fakeUpdates.start(refused));
    await waitFor(async () => (await dialogOf(h, bot, refused))?.status === 'blocked');

    const kicked = nextChat();
    await sendUpdate(h, bot, fakeUpdates.start(kicked));
    await waitForMessages(h, bot, kicked, 1);
    await sendUpdate(h, bot, fakeUpdates.blocked(kicked));
    await waitFor(async () => (await dialogOf(h, bot, kicked))?.status === 'blocked');
  });

  it("manual stops automation and keeps the user's messages; stepId with status=auto resumes it", async () => {
    const bot = await createScriptedBot(h, {
      start: 'ask',
      steps: [
        { key: 'ask', type: 'input', text: 'Question?', field: 'answer', next: 'done' },
        { key: 'done', type: 'send_message', text: 'done' },
        { key: 'resume', type: 'send_message', text: 'welcome back' },
      ],
    });
    const chatId = nextChat();
    await sendUpdate(h, bot, fakeUpdates.start(chatId));
    await waitForMessages(h, bot, chatId, 1);
    await fetch(`${bot.postbackUrl}?chatId=${chatId}&status=manual`);
    await waitFor(async () => (await dialogOf(h, bot, chatId))?.status === 'manual');
    await sendUpdate(h, bot, fakeUpdates.text(chatId, 'hello operator'));
    await waitFor(
      async () =>
        (await h.db('dialog_messages').where({ bot_id: bot.botId, chat_id: chatId }).orderBy('id', 'desc').first())
          ?.text === 'hello operator',
    );
    await sleep(300);
    expect(messagesTo(h, bot, chatId)).toHaveLength(1);
    expect((await dialogOf(h, bot, chatId)).fields.answer).toBeUndefined();

    await fetch(`${bot.postbackUrl}?chatId=${chatId}&stepId=resume&status=auto`);
    expect(await waitForMessages(h, bot, chatId, 2)).toEqual(['Question?', 'welcome back']);
  });
});

describe('the FAQ round trip', () => {
  let server: Server;
  let received: URL[] = [];
  let target = '';
  beforeAll(async () => {
    server = createServer((req, res) => {
      const url = new URL(req.url!, 'http://127.0.0.1');
      received.push(url);
      res.end('ok');
      // The outside system checks its database, then moves the user on through the postback URL.
      void fetch(
        `${url.searchParams.get('postback')}?chatId=${url.searchParams.get('chatId')}&stepId=approved&status=auto`,
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    target = `http://127.0.0.1:${(server.address() as { port: number }).port}/check`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('a send_webhook step calls out with ?chatId=…, the answer comes back by postback and the next message goes out', async () => {
    received = [];
    const holder: { url?: string } = {};
    const bot = await createScriptedBot(h, {
      start: 'hello',
      steps: [
        { key: 'hello', type: 'send_message', text: 'Checking…', next: 'ask' },
        {
          key: 'ask',
          type: 'send_webhook',
          method: 'GET',
          url: `${target}?chatId={chatId}&postback={{fields.postback}}`,
        },
        { key: 'approved', type: 'send_message', text: 'Approved, {{name}}' },
      ],
    });
    holder.url = bot.postbackUrl;
    const chatId = nextChat();
    await fetch(`${bot.postbackUrl}?chatId=${chatId}&postback=${encodeURIComponent(bot.postbackUrl)}`);
    await waitFor(async () => (await dialogOf(h, bot, chatId))?.fields.postback);
    await sendUpdate(h, bot, fakeUpdates.start(chatId));
    expect(await waitForMessages(h, bot, chatId, 2)).toEqual(['Checking…', 'Approved, Test User']);
    expect(received[0]!.searchParams.get('chatId')).toBe(String(chatId));
    const delivery = await h.db('deliveries').where({ bot_id: bot.botId }).first();
    expect(delivery.state).toBe('succeeded');
  });
});

describe('secrets', () => {
  it('no job, inbox or other Redis value holds a bot token', async () => {
    const bot = await createScriptedBot(h, {
      start: 'a',
      steps: [
        { key: 'a', type: 'send_message', text: 'hi', next: 'w' },
        { key: 'w', type: 'delay', seconds: 60 },
      ],
    });
    const chatId = nextChat();
    await sendUpdate(h, bot, fakeUpdates.start(chatId));
    await waitForMessages(h, bot, chatId, 1);
    const redis = new Redis(REDIS_URL);
    try {
      const keys: string[] = [];
      let cursor = '0';
      do {
        const [next, batch] = await redis.scan(cursor, 'MATCH', `${h.config.queuePrefix}:*`, 'COUNT', 1000);
        keys.push(...batch);
        cursor = next;
      } while (cursor !== '0');
      expect(keys.some((key) => key.includes(':step-runs:'))).toBe(true); // the delay is stored
      for (const key of keys) {
        const type = await redis.type(key);
        const dump =
          type === 'hash'
            ? JSON.stringify(await redis.hgetall(key))
            : type === 'list'
              ? JSON.stringify(await redis.lrange(key, 0, -1))
              : type === 'string'
                ? String(await redis.get(key))
                : type === 'zset'
                  ? JSON.stringify(await redis.zrange(key, 0, -1))
                  : type === 'stream'
                    ? JSON.stringify(await redis.xrange(key, '-', '+'))
                    : '';
        expect(dump.includes(bot.token), key).toBe(false);
      }
    } finally {
      redis.disconnect();
    }
  });
});

describe('long polling', () => {
  it('without an https PUBLIC_URL, workers long-poll each bot from one process and serve its updates', async () => {
    const polled = await startHarness({ workers: true, poll: true, env: { TELEGRAM_CHAT_RATE_LIMIT: '0' } });
    // A second worker process, whose Bot API calls the fake records under its own label.
    const secondConfig = { ...polled.config, telegramApiRoot: polled.telegram.clientRoot('second') };
    const second = await startWorkerTier(secondConfig, polled.db, createLogger('silent'), { poll: true });
    try {
      const bot = await createScriptedBot(polled, {
        start: 'hello',
        steps: [{ key: 'hello', type: 'send_message', text: 'Hello, {{name}}!' }],
      });
      expect(polled.telegram.webhookOf(bot.token)).toBeNull();
      const chatId = nextChat();
      polled.telegram.pushUpdate(bot.token, fakeUpdates.start(chatId));
      expect(await waitForMessages(polled, bot, chatId, 1, 15_000)).toEqual(['Hello, Test User!']);
      await new Promise((resolve) => setTimeout(resolve, 1_500)); // both processes have rescanned the bots by now
      const pollers = new Set(polled.telegram.callsOf('getUpdates', bot.token).map((call) => call.client));
      expect(pollers.size).toBe(1);
    } finally {
      await second.close();
      await polled.close();
    }
  });
});
