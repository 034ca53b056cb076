/**
 * One order for every input of a dialog (postback moves, Telegram updates, delay firings),
 * journaled in Postgres and handled one at a time: end-to-end through the web tier, the queues,
 * the workers and a fake Bot API.
 */
import { createServer, type Server } from 'node:http';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QUEUES } from '../../src/jobs/queue-names.js';
import { createLogger } from '../../src/config/log.js';
import { startWorkerTier, type WorkerTier } from '../../src/workers/worker-tier.js';
import {
  createScriptedBot,
  dialogOf,
  messagesTo,
  sendUpdate,
  waitForMessages,
  type TestBot,
} from '../support/bot-scripts.js';
import { fakeApiError, fakeUpdates, type FakeApiError } from '../support/fake-telegram.js';
import { REDIS_URL, startHarness, waitFor, type Harness } from '../support/harness.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let chat = 810_000;
const nextChat = () => chat++;
let tokenCounter = 8_100_000;
const newToken = () => `${tokenCounter++}:AAH-second-token-for-tests-${Math.random().toString(36).slice(2, 10)}`;

/**
 * Telegram failing retryably: the sender tries a message SENDER_TRIES times in place (with backoff),
 * then gives up with a retryable error, so SENDER_TRIES answers fail one try of the input. (A 429
 * would hold the whole bot for its retry_after instead.)
 */
const UNAVAILABLE: FakeApiError = { error_code: 502, description: 'Bad Gateway' };
const SENDER_TRIES = 4;
/** The answers that fail `tries` tries of an input. */
const failing = (tries: number) => tries * SENDER_TRIES;
const failed = (text: string, tries = 1) => Array.from({ length: failing(tries) }, () => `${text}:502`);

interface TextFailure {
  chatId: number;
  texts: string[];
  remaining: number;
  error: FakeApiError;
}

/**
 * Answers sendMessage in place of the fake's built-in answer, so that a message can be made to fail
 * by its text (failNext only knows "the next call"). Returns the list of failures to fill.
 */
function failByText(target: Harness): TextFailure[] {
  const failures: TextFailure[] = [];
  let messageId = 5_000_000;
  target.telegram.handle('sendMessage', (params, token) => {
    const chatId = Number(params.chat_id);
    const text = typeof params.text === 'string' ? params.text : '';
    const failure = failures.find((f) => f.remaining > 0 && f.chatId === chatId && f.texts.includes(text));
    if (failure) {
      failure.remaining--;
      throw fakeApiError(failure.error);
    }
    const botId = Number(token.split(':')[0]);
    return {
      message_id: ++messageId,
      date: Math.floor(Date.now() / 1000),
      chat: { id: chatId, type: 'private', first_name: 'Test' },
      from: { id: botId, is_bot: true, first_name: `Bot ${botId}`, username: `bot${botId}` },
      text,
    };
  });
  return failures;
}

/** The texts Telegram acknowledged (answered 200) for a chat, in order. */
function acknowledged(target: Harness, bot: TestBot, chatId: number, token = bot.token): string[] {
  return target.telegram
    .callsOf('sendMessage', token)
    .filter((call) => Number(call.params.chat_id) === chatId && call.status === 200)
    .map((call) => String(call.params.text));
}

async function waitForAcknowledged(
  target: Harness,
  bot: TestBot,
  chatId: number,
  count: number,
  timeoutMs = 8_000,
  token = bot.token,
): Promise<string[]> {
  return waitFor(
    async () => {
      const texts = acknowledged(target, bot, chatId, token);
      return texts.length >= count ? texts : null;
    },
    timeoutMs,
    `${count} acknowledged messages to ${chatId} (got ${JSON.stringify(acknowledged(target, bot, chatId, token))})`,
  );
}

async function postback(bot: TestBot, query: string): Promise<void> {
  const res = await fetch(`${bot.postbackUrl}?${query}`);
  expect(res.status, await res.clone().text()).toBe(202);
}

/** A local HTTP target for send_webhook steps; `onRequest` may answer the call by postback. */
async function startTarget(onRequest: (url: URL) => void): Promise<{ server: Server; base: string; received: URL[] }> {
  const received: URL[] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url!, 'http://127.0.0.1');
    received.push(url);
    res.end('ok');
    onRequest(url);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, base: `http://127.0.0.1:${(server.address() as { port: number }).port}`, received };
}

const ENV = { PUBLIC_URL: 'https://flowpost.test', OUTBOUND_ALLOW_CIDRS: '127.0.0.0/8' };

// ---------------------------------------------------------------------------------------------
// Most tests: no per-chat send limit, inputs set aside after 2 failed tries.
// ---------------------------------------------------------------------------------------------

let h: Harness;
let workers: WorkerTier;
let failures: TextFailure[];
let target: Awaited<ReturnType<typeof startTarget>>;

beforeAll(async () => {
  h = await startHarness({ env: { ...ENV, TELEGRAM_CHAT_RATE_LIMIT: '0' } });
  workers = await startWorkerTier(h.config, h.db, createLogger('silent'), { poll: false, maxInputAttempts: 2 });
  failures = failByText(h);
  target = await startTarget(() => undefined);
});
afterAll(async () => {
  await workers?.close();
  await h?.close();
  await new Promise<void>((resolve) => (target ? target.server.close(() => resolve()) : resolve()));
});

// Each test has a bot and chats of its own (failures are set per chat): they run at once.
describe.concurrent('a dialog handles its inputs in one order', () => {
  it('a move set before the user starts runs at /start, exactly once', async () => {
    const bot = await createScriptedBot(h, {
      start: 'hello',
      steps: [
        { key: 'hello', type: 'send_message', text: 'Hello' },
        { key: 'vip', type: 'send_message', text: 'VIP {{fields.level}}' },
      ],
    });
    const chatId = nextChat();
    // The postback is accepted before the /start, but the worker that applies accepted inputs
    // lags behind (a backlog): the move must still come first when the user starts.
    const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    const updates = new Queue(QUEUES.dialogUpdates, { connection: redis, prefix: h.config.queuePrefix });
    try {
      await updates.pause();
      await postback(bot, `chatId=${chatId}&level=gold&stepId=vip`);
      expect((await sendUpdate(h, bot, fakeUpdates.start(chatId))).status).toBe(200);
      await sleep(300);
    } finally {
      await updates.resume();
      await updates.close();
      redis.disconnect();
    }
    expect(await waitForMessages(h, bot, chatId, 1)).toEqual(['VIP gold']);
    await sleep(1_000);
    expect(messagesTo(h, bot, chatId).map((c) => c.params.text)).toEqual(['VIP gold']);
    expect(await dialogOf(h, bot, chatId)).toMatchObject({ stepKey: 'vip', status: 'auto' });
  });

  it('update_id: a lower id is served, a repeat of the same update is handled once', async () => {
    const bot = await createScriptedBot(h, {
      start: 'ask',
      steps: [
        { key: 'ask', type: 'input', text: 'Question?', field: 'answer', next: 'thanks' },
        { key: 'thanks', type: 'send_message', text: 'Got {{fields.answer}}' },
      ],
    });
    const chatId = nextChat();
    await sendUpdate(h, bot, { update_id: 900_000, ...fakeUpdates.start(chatId) });
    expect(await waitForMessages(h, bot, chatId, 1)).toEqual(['Question?']);

    // Telegram restarted its numbering: the returning user's update has a much lower id.
    const reply = { update_id: 5, ...fakeUpdates.text(chatId, 'first') };
    expect((await sendUpdate(h, bot, reply)).status).toBe(200);
    expect(await waitForMessages(h, bot, chatId, 2)).toEqual(['Question?', 'Got first']);

    // The same update delivered twice at once, and the old reply delivered again later: each once.
    const again = { update_id: 6, ...fakeUpdates.start(chatId) };
    await Promise.all([sendUpdate(h, bot, again), sendUpdate(h, bot, again)]);
    expect((await sendUpdate(h, bot, reply)).status).toBe(200);
    expect(await waitForMessages(h, bot, chatId, 3)).toEqual(['Question?', 'Got first', 'Question?']);
    await sleep(800);
    expect(messagesTo(h, bot, chatId).map((c) => c.params.text)).toEqual(['Question?', 'Got first', 'Question?']);
    expect((await dialogOf(h, bot, chatId)).fields.answer).toBe('first');
    const journaled = await h
      .db('dialog_inputs')
      .where({ bot_id: bot.botId, chat_id: chatId, kind: 'telegram' })
      .count({ n: '*' })
      .first();
    expect(Number(journaled!.n)).toBe(3);
  });

  it(
    'a poison input is set aside as dead, the dialog goes on, and the retry route completes it without resending',
    { timeout: 90_000 },
    async () => {
      const bot = await createScriptedBot(h, {
        start: 'a',
        steps: [
          { key: 'a', type: 'send_message', text: 'P-A', next: 'b' },
          { key: 'b', type: 'send_message', text: 'P-B' },
          { key: 'later', type: 'send_message', text: 'P-LATER' },
        ],
      });
      const chatId = nextChat();
      failures.push({ chatId, texts: ['P-B'], remaining: failing(2), error: UNAVAILABLE }); // maxInputAttempts is 2
      await sendUpdate(h, bot, fakeUpdates.start(chatId));

      const dead = await waitFor(
        async () => {
          const res = await h.api('GET', `/api/v1/bots/${bot.botId}/dead-letters`);
          expect(res.status).toBe(200);
          return res.body.items.find((item: { chatId: number }) => item.chatId === chatId);
        },
        30_000,
        'the dead letter',
      );
      expect(dead).toMatchObject({ chatId, kind: 'telegram', attempts: 2 });
      expect(dead.error).toMatch(/502/);
      expect(dead.input.kind).toBe('telegram');
      expect(acknowledged(h, bot, chatId)).toEqual(['P-A']);

      // The dialog goes on with its next input.
      await postback(bot, `chatId=${chatId}&stepId=later`);
      expect(await waitForAcknowledged(h, bot, chatId, 2)).toEqual(['P-A', 'P-LATER']);

      // Put back: it resumes at the message not acknowledged (P-A is not sent again).
      const retried = await h.api('POST', `/api/v1/bots/${bot.botId}/dead-letters/${chatId}/${dead.seq}/retry`);
      expect(retried.status, JSON.stringify(retried.body)).toBe(202);
      expect(await waitForAcknowledged(h, bot, chatId, 3)).toEqual(['P-A', 'P-LATER', 'P-B']);
      await waitFor(
        async () =>
          (await h.db('dialog_inputs').where({ bot_id: bot.botId, chat_id: chatId, seq: dead.seq }).first())?.state ===
          'done',
      );
      const after = await h.api('GET', `/api/v1/bots/${bot.botId}/dead-letters?chatId=${chatId}`);
      expect(after.body.items).toEqual([]);
      await sleep(500);
      const sent = messagesTo(h, bot, chatId).map((c) => `${String(c.params.text)}:${c.status}`);
      expect(sent).toEqual(['P-A:200', ...failed('P-B', 2), 'P-LATER:200', 'P-B:200']);
      // A second retry of the same seq finds nothing dead.
      expect((await h.api('POST', `/api/v1/bots/${bot.botId}/dead-letters/${chatId}/${dead.seq}/retry`)).status).toBe(
        404,
      );
    },
  );

  it(
    'a retried run resumes after the messages Telegram acknowledged: ONE, TWO, THREE, ONE only once',
    { timeout: 60_000 },
    async () => {
      const bot = await createScriptedBot(h, {
        start: 'one',
        steps: [
          { key: 'one', type: 'send_message', text: 'ONE', next: 'two' },
          { key: 'two', type: 'send_message', text: 'TWO', next: 'three' },
          { key: 'three', type: 'send_message', text: 'THREE' },
        ],
      });
      const chatId = nextChat();
      failures.push({ chatId, texts: ['TWO'], remaining: failing(1), error: UNAVAILABLE });
      await sendUpdate(h, bot, fakeUpdates.start(chatId));
      expect(await waitForAcknowledged(h, bot, chatId, 3, 30_000)).toEqual(['ONE', 'TWO', 'THREE']);
      await sleep(500);
      expect(messagesTo(h, bot, chatId).map((c) => `${String(c.params.text)}:${c.status}`)).toEqual([
        'ONE:200',
        ...failed('TWO'),
        'TWO:200',
        'THREE:200',
      ]);
      const input = await h.db('dialog_inputs').where({ bot_id: bot.botId, chat_id: chatId }).first();
      expect(input).toMatchObject({ state: 'done', attempts: 1, effects_done: 3 });
    },
  );

  it(
    'a retried run keeps the branch it chose: the send_webhook recorded is the one of the message sent',
    { timeout: 90_000 },
    async () => {
      const hook = (name: string) => `${target.base}/${name}?chatId={chatId}`;
      const conditional = await createScriptedBot(h, {
        start: 'check',
        steps: [
          {
            key: 'check',
            type: 'condition',
            branches: [{ when: [{ subject: 'fields.tier', op: 'is', value: 'gold' }], next: 'g_hook' }],
            else: 's_hook',
          },
          { key: 'g_hook', type: 'send_webhook', method: 'GET', url: hook('gold'), next: 'g_msg' },
          { key: 'g_msg', type: 'send_message', text: 'GOLD' },
          { key: 's_hook', type: 'send_webhook', method: 'GET', url: hook('silver'), next: 's_msg' },
          { key: 's_msg', type: 'send_message', text: 'SILVER' },
        ],
      });
      const split = await createScriptedBot(h, {
        start: 'split',
        steps: [
          {
            key: 'split',
            type: 'ab_split',
            variants: [
              { weight: 50, next: 'a_hook' },
              { weight: 50, next: 'b_hook' },
            ],
          },
          { key: 'a_hook', type: 'send_webhook', method: 'GET', url: hook('a'), next: 'a_msg' },
          { key: 'a_msg', type: 'send_message', text: 'A' },
          { key: 'b_hook', type: 'send_webhook', method: 'GET', url: hook('b'), next: 'b_msg' },
          { key: 'b_msg', type: 'send_message', text: 'B' },
        ],
      });

      // Condition: the first try goes down `silver` and its message fails; before the retry a
      // postback makes the user gold. The retry carries out what was decided, not a new run.
      const chatId = nextChat();
      failures.push({ chatId, texts: ['SILVER', 'GOLD'], remaining: failing(1), error: UNAVAILABLE });
      const splitChats = Array.from({ length: 6 }, nextChat);
      for (const c of splitChats)
        failures.push({ chatId: c, texts: ['A', 'B'], remaining: failing(1), error: UNAVAILABLE });

      // The retry (a step-runs job) waits until the postback has made the user gold, however slowly
      // this machine applies it: runs are held from before the first try (which runs inline, in the
      // process that journaled the /start) until then.
      const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
      const runs = new Queue(QUEUES.stepRuns, { connection: redis, prefix: h.config.queuePrefix });
      let goldAt: number;
      try {
        await runs.pause();
        await sendUpdate(h, conditional, fakeUpdates.start(chatId));
        for (const c of splitChats) await sendUpdate(h, split, fakeUpdates.start(c));
        await h.telegram.waitForCall(
          'sendMessage',
          (c) => Number(c.params.chat_id) === chatId && c.status === 502,
          8_000,
        );
        await postback(conditional, `chatId=${chatId}&tier=gold`);
        await waitFor(async () => (await dialogOf(h, conditional, chatId))?.fields.tier === 'gold');
        goldAt = Date.now();
      } finally {
        await runs.resume();
        await runs.close();
        redis.disconnect();
      }
      expect(await waitForAcknowledged(h, conditional, chatId, 1, 30_000)).toEqual(['SILVER']);
      const sentAt = h.telegram
        .callsOf('sendMessage', conditional.token)
        .find((c) => Number(c.params.chat_id) === chatId && c.status === 200)!.at;
      expect(sentAt, 'the retry came after the postback made the user gold').toBeGreaterThan(goldAt);
      const conditionalDeliveries = await h
        .db('deliveries')
        .where({ bot_id: conditional.botId, chat_id: chatId })
        .select('url');
      expect(conditionalDeliveries.map((d: { url: string }) => new URL(d.url).pathname)).toEqual(['/silver']);

      for (const c of splitChats) {
        const [text] = await waitForAcknowledged(h, split, c, 1, 30_000);
        const rows = await h.db('deliveries').where({ bot_id: split.botId, chat_id: c }).select('url');
        expect(
          rows.map((d: { url: string }) => new URL(d.url).pathname),
          `chat ${c} got ${text}`,
        ).toEqual([`/${text!.toLowerCase()}`]);
        expect(messagesTo(h, split, c).map((m) => `${String(m.params.text)}:${m.status}`)).toEqual([
          ...failed(text!),
          `${text}:200`,
        ]);
      }
      await sleep(300);
      expect(acknowledged(h, conditional, chatId)).toEqual(['SILVER']);
    },
  );

  it('a script upload while a delay waits: the step with the same key runs; a step gone sets the dialog manual with a reason', async () => {
    const script = (second: string, secondText: string) => ({
      start: 'first',
      steps: [
        { key: 'first', type: 'send_message', text: 'one', next: 'wait' },
        { key: 'wait', type: 'delay', seconds: 2, next: second },
        { key: second, type: 'send_message', text: secondText },
      ],
    });
    const kept = await createScriptedBot(h, script('second', 'two'));
    const renamed = await createScriptedBot(h, script('second', 'two'));
    const keptChat = nextChat();
    const renamedChat = nextChat();
    await sendUpdate(h, kept, fakeUpdates.start(keptChat));
    await sendUpdate(h, renamed, fakeUpdates.start(renamedChat));
    await waitForMessages(h, kept, keptChat, 1);
    await waitForMessages(h, renamed, renamedChat, 1);
    await waitFor(
      async () =>
        (await dialogOf(h, kept, keptChat))?.stepKey === 'wait' &&
        (await dialogOf(h, renamed, renamedChat))?.stepKey === 'wait',
    );

    // `second` is dropped, then uploaded again: the same key, a new step id.
    const oldId = kept.steps.get('second');
    const dropped = await h.api('PUT', `/api/v1/bots/${kept.botId}/script`, {
      start: 'first',
      steps: [
        { key: 'first', type: 'send_message', text: 'one', next: 'wait' },
        { key: 'wait', type: 'delay', seconds: 2 },
      ],
    });
    expect(dropped.status, JSON.stringify(dropped.body)).toBe(200);
    const readded = await h.api('PUT', `/api/v1/bots/${kept.botId}/script`, script('second', 'two, as uploaded again'));
    expect(readded.status, JSON.stringify(readded.body)).toBe(200);
    const newId = readded.body.steps.find((s: { key: string }) => s.key === 'second').id;
    expect(newId).not.toBe(oldId);

    // `second` is renamed `later`: the step the delay leads to is gone.
    const moved = await h.api('PUT', `/api/v1/bots/${renamed.botId}/script`, script('later', 'two, renamed'));
    expect(moved.status, JSON.stringify(moved.body)).toBe(200);

    expect(await waitForMessages(h, kept, keptChat, 2, 6_000)).toEqual(['one', 'two, as uploaded again']);
    expect(await dialogOf(h, kept, keptChat)).toMatchObject({ stepKey: 'second', stepId: newId, status: 'auto' });

    const manual = await waitFor(
      async () => {
        const dialog = await dialogOf(h, renamed, renamedChat);
        return dialog?.status === 'manual' ? dialog : null;
      },
      6_000,
      'the renamed dialog to turn manual',
    );
    expect(manual.manualReason).toMatch(/second/);
    expect(messagesTo(h, renamed, renamedChat).map((c) => c.params.text)).toEqual(['one']);
    await sleep(300);
    expect(messagesTo(h, kept, keptChat).map((c) => c.params.text)).toEqual(['one', 'two, as uploaded again']);
  });

  // A run that ends on the step it started from (delay → ping → the same delay) must still count
  // as the newest move, or the delay it set is taken for a stale one when it fires.
  it('a delay that leads back to itself keeps firing (a reminder loop)', async () => {
    const bot = await createScriptedBot(h, {
      start: 'hello',
      steps: [
        { key: 'hello', type: 'send_message', text: 'hello', next: 'wait' },
        { key: 'wait', type: 'delay', seconds: 1, next: 'ping' },
        { key: 'ping', type: 'send_message', text: 'ping', next: 'wait' },
      ],
    });
    const chatId = nextChat();
    await sendUpdate(h, bot, fakeUpdates.start(chatId));
    expect(await waitForMessages(h, bot, chatId, 4, 6_000)).toEqual(['hello', 'ping', 'ping', 'ping']);
  });
});

// ---------------------------------------------------------------------------------------------
// One message a second per chat (Telegram's own limit), so that a run is still sending while
// other inputs of its dialog come in.
// ---------------------------------------------------------------------------------------------

describe.concurrent('inputs that come in while a run is still sending', () => {
  let slow: Harness;
  let faq: Awaited<ReturnType<typeof startTarget>>;
  const postbackUrls = new Map<string, string>();
  const answered: Array<{ chatId: string; at: number }> = [];

  beforeAll(async () => {
    slow = await startHarness({ workers: true, env: { ...ENV, TELEGRAM_CHAT_RATE_LIMIT: '1' } });
    // The outside system answers the FAQ call at once through the postback URL.
    faq = await startTarget((url) => {
      const postbackUrl = postbackUrls.get(url.pathname);
      const chatId = url.searchParams.get('chatId')!;
      if (!postbackUrl) return;
      void fetch(`${postbackUrl}?chatId=${chatId}&stepId=thanks&status=auto`).then((res) => {
        if (res.status === 202) answered.push({ chatId, at: Date.now() });
      });
    });
  });
  afterAll(async () => {
    await slow?.close();
    await new Promise<void>((resolve) => (faq ? faq.server.close(() => resolve()) : resolve()));
  });

  it('FAQ loop: the postback answering a send_webhook mid-run runs its step once, after the welcome messages', async () => {
    const bot = await createScriptedBot(slow, {
      start: 'w1',
      steps: [
        { key: 'w1', type: 'send_message', text: 'Welcome 1', next: 'hook' },
        { key: 'hook', type: 'send_webhook', method: 'GET', url: `${faq.base}/faq/1?chatId={chatId}`, next: 'w2' },
        { key: 'w2', type: 'send_message', text: 'Welcome 2', next: 'w3' },
        { key: 'w3', type: 'send_message', text: 'Welcome 3' },
        { key: 'thanks', type: 'send_message', text: 'Thanks!' },
      ],
    });
    postbackUrls.set('/faq/1', bot.postbackUrl);
    const chatId = nextChat();
    await sendUpdate(slow, bot, fakeUpdates.start(chatId));
    expect(await waitForMessages(slow, bot, chatId, 4, 9_000)).toEqual([
      'Welcome 1',
      'Welcome 2',
      'Welcome 3',
      'Thanks!',
    ]);
    // The postback came in while the run was still sending.
    const answer = answered.find((a) => a.chatId === String(chatId));
    expect(answer).toBeDefined();
    const welcome3 = messagesTo(slow, bot, chatId)[2]!;
    expect(answer!.at).toBeLessThan(welcome3.at);
    await sleep(1_200);
    expect(messagesTo(slow, bot, chatId).map((c) => c.params.text)).toEqual([
      'Welcome 1',
      'Welcome 2',
      'Welcome 3',
      'Thanks!',
    ]);
    expect(await dialogOf(slow, bot, chatId)).toMatchObject({ stepKey: 'thanks', status: 'auto' });
  });

  it('an older reply does not undo a newer postback: the reply is handled first, then the move', async () => {
    const bot = await createScriptedBot(slow, {
      start: 'h1',
      steps: [
        { key: 'h1', type: 'send_message', text: 'Hi 1', next: 'h2' },
        { key: 'h2', type: 'send_message', text: 'Hi 2', next: 'ask' },
        { key: 'ask', type: 'input', text: 'Your e-mail?', field: 'email', next: 'thanks' },
        { key: 'thanks', type: 'send_message', text: 'Thanks, {{fields.email}}' },
        { key: 'vip', type: 'send_message', text: 'VIP' },
      ],
    });
    const chatId = nextChat();
    await sendUpdate(slow, bot, fakeUpdates.start(chatId));
    await waitForMessages(slow, bot, chatId, 1);
    // The reply is accepted first, then the postback, while the /start run is still sending.
    expect((await sendUpdate(slow, bot, fakeUpdates.text(chatId, 'a@b.example'))).status).toBe(200);
    await postback(bot, `chatId=${chatId}&stepId=vip`);
    expect(messagesTo(slow, bot, chatId).length).toBeLessThan(3);

    expect(await waitForMessages(slow, bot, chatId, 5, 9_000)).toEqual([
      'Hi 1',
      'Hi 2',
      'Your e-mail?',
      'Thanks, a@b.example',
      'VIP',
    ]);
    await sleep(1_200);
    expect(messagesTo(slow, bot, chatId)).toHaveLength(5);
    const dialog = await dialogOf(slow, bot, chatId);
    expect(dialog).toMatchObject({ stepKey: 'vip', status: 'auto' });
    expect(dialog.fields.email).toBe('a@b.example');
  });
});

// ---------------------------------------------------------------------------------------------
// Long polling: update ids are per token.
// ---------------------------------------------------------------------------------------------

describe('long polling after a token change', () => {
  it("serves the new token's first updates (the old token's offset and update ids are not applied)", async () => {
    const polled = await startHarness({ env: { TELEGRAM_CHAT_RATE_LIMIT: '0' } });
    let pollers: WorkerTier | undefined;
    try {
      const bot = await createScriptedBot(polled, {
        start: 'hello',
        steps: [{ key: 'hello', type: 'send_message', text: 'Hello, {{name}}!' }],
      });
      pollers = await startWorkerTier(polled.config, polled.db, createLogger('silent'), { poll: true });
      const chatId = nextChat();
      polled.telegram.pushUpdate(bot.token, { update_id: 700, ...fakeUpdates.start(chatId) });
      expect(await waitForMessages(polled, bot, chatId, 1)).toEqual(['Hello, Test User!']);
      // The offset past update 700 is stored.
      await polled.telegram.waitForCall('getUpdates', (c) => c.token === bot.token && Number(c.params.offset) === 701);

      const token = newToken();
      const patched = await polled.api('PATCH', `/api/v1/bots/${bot.botId}`, { telegramToken: token });
      expect(patched.status, JSON.stringify(patched.body)).toBe(200);
      // The new token numbers its updates from 1: the same user starts again, and a new one.
      const other = nextChat();
      polled.telegram.pushUpdate(token, { update_id: 1, ...fakeUpdates.start(chatId) });
      polled.telegram.pushUpdate(token, { update_id: 2, ...fakeUpdates.start(other) });
      const sent = (c: number) =>
        polled.telegram
          .callsOf('sendMessage', token)
          .filter((call) => Number(call.params.chat_id) === c && call.status === 200).length;
      // The bot list is re-read every 5 s; a machine busy with other test files may take longer.
      await waitFor(
        async () => sent(chatId) === 1 && sent(other) === 1,
        20_000,
        "the new token's updates to be served",
      );
      // The new token was polled from no offset at all.
      expect(polled.telegram.callsOf('getUpdates', token)[0]!.params.offset).toBeUndefined();
    } finally {
      await pollers?.close();
      await polled.close();
    }
  }, 45_000);
});
