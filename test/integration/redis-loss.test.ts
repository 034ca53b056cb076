/**
 * Redis loses everything (FLUSHALL on a private redis-server: no AOF, a failover without the data):
 * Postgres is the source of truth. The order counter must come back above every order already
 * applied (so nothing accepted after the loss is dropped as older), and the delays whose alarms
 * were lost must still fire, re-armed by the sweeper from Postgres.
 */
import type { Knex } from 'knex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb } from '../../src/db/connection.js';
import { createLogger } from '../../src/config/log.js';
import { startWebTier, type WebTier } from '../../src/http/server.js';
import { startWorkerTier, type WorkerTier } from '../../src/workers/worker-tier.js';
import {
  createScriptedBot,
  dialogOf,
  messagesTo,
  sendUpdate,
  waitForMessages,
  type TestBot,
} from '../support/bot-scripts.js';
import { fakeUpdates } from '../support/fake-telegram.js';
import { ADMIN_KEY, startHarness, waitFor, type Harness } from '../support/harness.js';
import { startPrivateRedis, type PrivateRedis } from '../support/private-redis.js';

const log = createLogger(process.env.TEST_LOG_LEVEL ?? 'silent');
const TIER_OPTIONS = { poll: false, sweepIntervalMs: 300, staleInputMs: 1_000 } as const;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let redis: PrivateRedis;
let base: Harness;
/** The processes now running: a web tier and a worker tier (each worker with its own pool, as a process has). */
let web: WebTier;
let workers: { tier: WorkerTier; db: Knex } | null = null;

/** The harness as the bot helpers see it, always pointed at the web tier now running. */
const h = {
  get config() {
    return base.config;
  },
  get telegram() {
    return base.telegram;
  },
  get db() {
    return base.db;
  },
  get baseUrl() {
    return `http://127.0.0.1:${web.port}`;
  },
  async api(method: string, path: string, body?: unknown) {
    const response = await fetch(`${h.baseUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : null };
  },
} as unknown as Harness;

async function startProcesses(): Promise<void> {
  web = await startWebTier(base.config, base.db, log);
  const db = createDb(base.config.databaseUrl);
  workers = { tier: await startWorkerTier(base.config, db, log, TIER_OPTIONS), db };
}

async function stopProcesses(): Promise<void> {
  await web.close();
  if (workers) {
    await workers.tier.close();
    await workers.db.destroy();
    workers = null;
  }
}

beforeAll(async () => {
  redis = await startPrivateRedis();
  base = await startHarness({
    web: false,
    workers: false,
    env: {
      REDIS_URL: redis.url,
      PUBLIC_URL: 'https://flowpost.test',
      TELEGRAM_CHAT_RATE_LIMIT: '0',
      TELEGRAM_BOT_RATE_LIMIT: '0',
    },
  });
  expect(base.config.redisUrl).toBe(redis.url); // every process of this file uses the private server only
  await startProcesses();
});
afterAll(async () => {
  if (web) await stopProcesses().catch(() => undefined);
  await base?.close();
  await redis?.stop();
});

let chat = 8_200_000;

/** The postback URL on the web tier now running. */
function postbackUrl(bot: TestBot): string {
  const url = new URL(bot.postbackUrl);
  return `${h.baseUrl}${url.pathname}`;
}

async function postback(bot: TestBot, params: Record<string, string>): Promise<number> {
  const res = await fetch(`${postbackUrl(bot)}?${new URLSearchParams(params)}`);
  const body = (await res.json()) as { updateId?: string };
  expect(res.status, JSON.stringify(body)).toBe(202);
  return Number(body.updateId);
}

async function fieldsOf(bot: TestBot, chatId: number): Promise<Record<string, unknown> | undefined> {
  return (await dialogOf(h, bot, chatId))?.fields;
}

async function counterValue(): Promise<number> {
  const client = redis.client();
  try {
    return Number((await client.get(`${base.config.queuePrefix}:dialog-updates:id`)) ?? 0);
  } finally {
    client.disconnect();
  }
}

/** Delayed jobs on `step-runs` (the delays' alarms). */
async function delayedAlarms(): Promise<number> {
  const client = redis.client();
  try {
    return await client.zcard(`${base.config.queuePrefix}:step-runs:delayed`);
  } finally {
    client.disconnect();
  }
}

const DELAYED_SCRIPT = {
  start: 'hello',
  steps: [
    { key: 'hello', type: 'send_message', text: 'hello {{fields.a}}', next: 'wait' },
    { key: 'wait', type: 'delay', seconds: 3, next: 'done' },
    { key: 'done', type: 'send_message', text: 'done {{fields.a}} {{fields.b}}' },
  ],
};

describe('Redis loses its data', () => {
  it('after FLUSHALL and a restart of every process, new postbacks win and a pending delay still fires', async () => {
    const bot = await createScriptedBot(h, DELAYED_SCRIPT);
    const chatId = chat++;
    const other = chat++;

    // Values for two dialogs, applied before the loss.
    const before: number[] = [];
    for (let i = 1; i <= 3; i++) {
      before.push(await postback(bot, { chatId: String(chatId), 'fields.a': `a${i}`, 'fields.b': `b${i}` }));
      before.push(await postback(bot, { chatId: String(other), 'fields.a': `x${i}` }));
    }
    await waitFor(
      async () => (await fieldsOf(bot, chatId))?.b === 'b3' && (await fieldsOf(bot, other))?.a === 'x3',
      10_000,
      'values applied',
    );

    // The user starts: the first message goes out and a 3 s delay is pending (on the dialog row, and as a delayed job).
    expect((await sendUpdate(h, bot, fakeUpdates.start(chatId))).status).toBe(200);
    expect(await waitForMessages(h, bot, chatId, 1)).toEqual(['hello a3']);
    const pending = await waitFor(
      async () =>
        (await h.db('dialogs').where({ bot_id: bot.botId, chat_id: chatId }).first())?.timer_at as Date | null,
      5_000,
      'delay pending',
    );
    // The run is done once its alarm is armed: only then is there an alarm for the loss to take.
    await waitFor(
      async () =>
        (await h
          .db('dialog_inputs')
          .where({ bot_id: bot.botId, chat_id: chatId, kind: 'telegram', state: 'done' })
          .first()) !== undefined,
      5_000,
      '/start handled',
    );
    expect(await delayedAlarms()).toBe(1);
    const startedAt = Date.now();
    const highestBefore = Math.max(
      ...before,
      Number((await h.db('dialogs').where({ bot_id: bot.botId }).max('last_seq as m').first())?.m ?? 0),
    );

    await redis.flushAll();
    expect(await counterValue()).toBe(0);
    expect(await delayedAlarms()).toBe(0);
    await stopProcesses();
    await startProcesses();

    // New values for the same fields, accepted after the loss: ordered after everything applied before it.
    const after: number[] = [];
    after.push(await postback(bot, { chatId: String(chatId), 'fields.a': 'a4' }));
    after.push(await postback(bot, { chatId: String(other), 'fields.a': 'x4' }));
    after.push(await postback(bot, { chatId: String(chatId), 'fields.b': 'b4' }));
    for (const id of after)
      expect(id, `updateId ${id} after the loss vs ${highestBefore} before`).toBeGreaterThan(highestBefore);
    await waitFor(
      async () => {
        const [mine, theirs] = [await fieldsOf(bot, chatId), await fieldsOf(bot, other)];
        return mine?.a === 'a4' && mine?.b === 'b4' && theirs?.a === 'x4';
      },
      10_000,
      'values accepted after the loss applied',
    );
    const seqs = (await h.db('dialogs').where({ bot_id: bot.botId, chat_id: chatId }).first()).seqs;
    expect(Number(seqs['f:a'])).toBe(after[0]);
    expect(Number(seqs['f:b'])).toBe(after[2]);

    // The delay's alarm died with Redis: the sweeper re-arms it from Postgres, and it fires once.
    expect(Date.parse(String(pending)) - Date.now()).toBeLessThan(3_500);
    expect(await waitForMessages(h, bot, chatId, 2, 20_000)).toEqual(['hello a3', 'done a4 b4']);
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(2_500);
    await sleep(1_000);
    expect(messagesTo(h, bot, chatId).map((c) => c.params.text)).toEqual(['hello a3', 'done a4 b4']);
    const dialog = await h.db('dialogs').where({ bot_id: bot.botId, chat_id: chatId }).first();
    expect(dialog.timer_at).toBeNull();
    expect((await dialogOf(h, bot, chatId)).stepKey).toBe('done');
    const timerInput = await h.db('dialog_inputs').where({ bot_id: bot.botId, chat_id: chatId, kind: 'timer' }).first();
    expect(Number(timerInput.seq)).toBeGreaterThan(highestBefore);
  }, 60_000);

  it('after FLUSHALL while every process runs, the next postback is ordered above the loss and applied', async () => {
    const bot = await createScriptedBot(h, {
      start: 'ask',
      steps: [
        { key: 'ask', type: 'input', text: 'ask', field: 'reply', next: 'thanks' },
        { key: 'thanks', type: 'send_message', text: 'thanks {{fields.reply}} {{fields.a}}' },
        { key: 'moved', type: 'send_message', text: 'moved {{fields.a}}' },
      ],
    });
    const chatId = chat++;
    const before: number[] = [];
    for (let i = 1; i <= 5; i++) before.push(await postback(bot, { chatId: String(chatId), 'fields.a': `a${i}` }));
    await waitFor(async () => (await fieldsOf(bot, chatId))?.a === 'a5', 10_000, 'values applied');
    const highestBefore = Math.max(...before);

    await redis.flushAll();
    expect(await counterValue()).toBe(0);

    // The web tier draws an id at or below what it has seen: it puts the counter back and queues
    // the update again above it (or, when a worker took the low job first, that worker does).
    await postback(bot, { chatId: String(chatId), 'fields.a': 'a6' });
    await waitFor(
      async () => (await fieldsOf(bot, chatId))?.a === 'a6',
      10_000,
      'the value accepted after the loss applied',
    );
    const dialog = await h.db('dialogs').where({ bot_id: bot.botId, chat_id: chatId }).first();
    const id = Number(dialog.seqs['f:a']);
    expect(id).toBeGreaterThan(highestBefore);
    expect(await counterValue()).toBeGreaterThanOrEqual(id);

    // A move accepted next is ordered after it too, and runs once the user starts.
    const move = await postback(bot, { chatId: String(chatId), stepId: 'moved' });
    expect(move).toBeGreaterThan(id);
    await waitFor(async () => (await dialogOf(h, bot, chatId))?.stepKey === 'moved', 10_000, 'move applied');
    expect((await sendUpdate(h, bot, fakeUpdates.start(chatId))).status).toBe(200);
    expect(await waitForMessages(h, bot, chatId, 1)).toEqual(['moved a6']);
  }, 30_000);

  it('after FLUSHALL while every process runs, a Telegram reply is handled in order, after the moves applied before', async () => {
    const bot = await createScriptedBot(h, {
      start: 'hello',
      steps: [
        { key: 'hello', type: 'send_message', text: 'hello' },
        { key: 'ask', type: 'input', text: 'ask {{fields.a}}', field: 'reply', next: 'thanks' },
        { key: 'thanks', type: 'send_message', text: 'thanks {{fields.reply}}' },
      ],
    });
    const chatId = chat++;
    // Enough accepted inputs that the dialog's orders are well above a counter that restarts at 1.
    for (let i = 1; i <= 5; i++) await postback(bot, { chatId: String(chatId), 'fields.a': `a${i}` });
    expect((await sendUpdate(h, bot, fakeUpdates.start(chatId))).status).toBe(200);
    expect(await waitForMessages(h, bot, chatId, 1)).toEqual(['hello']);
    const moveId = await postback(bot, { chatId: String(chatId), stepId: 'ask' });
    expect(await waitForMessages(h, bot, chatId, 2)).toEqual(['hello', 'ask a5']);
    const highestBefore = Number(
      (await h.db('dialogs').where({ bot_id: bot.botId, chat_id: chatId }).first()).last_seq,
    );
    expect(highestBefore).toBeGreaterThanOrEqual(moveId);

    await redis.flushAll();
    // The user answers the question the move asked: the reply is newer than the move, so it is stored and the script goes on.
    const reply = { ...fakeUpdates.text(chatId, 'yes'), update_id: 900_000 + (chatId % 1000) };
    expect((await sendUpdate(h, bot, reply)).status).toBe(200);
    const row = await waitFor(
      async () =>
        h
          .db('dialog_inputs')
          .where({ bot_id: bot.botId, chat_id: chatId, kind: 'telegram' })
          .whereRaw(`payload->'update'->>'update_id' = ?`, [String(reply.update_id)])
          .first(),
      10_000,
      'the reply journaled',
    );
    await waitFor(
      async () =>
        (await h
          .db('dialog_inputs')
          .where({ bot_id: bot.botId, chat_id: chatId })
          .whereIn('state', ['pending', 'acting'])
          .first()) === undefined,
      10_000,
      'inputs handled',
    );
    // Found again by its update: a repeat queued above the restored floor moves a pending input to its later order.
    const handled = await h
      .db('dialog_inputs')
      .where({ bot_id: bot.botId, chat_id: chatId, kind: 'telegram' })
      .whereRaw(`payload->'update'->>'update_id' = ?`, [String(reply.update_id)])
      .first();
    expect(handled, `the reply first journaled with order ${row.seq}`).toBeDefined();
    expect(
      { orderedAfterTheMove: Number(handled.seq) > highestBefore, state: handled.state },
      `the reply accepted after the loss was journaled with order ${handled.seq} (${handled.state}: ${handled.note}); ` +
        `the move it answers had ${moveId}, the dialog's highest order before the loss was ${highestBefore}`,
    ).toEqual({ orderedAfterTheMove: true, state: 'done' });
    expect(await waitForMessages(h, bot, chatId, 3)).toEqual(['hello', 'ask a5', 'thanks yes']);
    expect((await dialogOf(h, bot, chatId)).fields.reply).toBe('yes');
  }, 30_000);
});
