/**
 * Retention: old finished rows are deleted in small batches and everything still needed stays
 * (dialogs, pending deliveries, open inputs, the journal's highest input, claimed clicks, what
 * still waits); one process runs it at a time; a worker tier runs it on its own; every queue's
 * jobs say how long they are kept once finished.
 */
import { randomUUID } from 'node:crypto';
import { Queue, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/env.js';
import { createLogger } from '../../src/config/log.js';
import { insertBot } from '../../src/db/bots.js';
import { createDb, type Db } from '../../src/db/connection.js';
import { failInput, highestSequence, journalInputs, type NewInput } from '../../src/db/dialog-inputs.js';
import { applyDialogUpdates } from '../../src/db/dialog-writer.js';
import type { DialogInput, DialogTimer } from '../../src/domain/inputs/types.js';
import { JOB_RETENTION } from '../../src/jobs/job-retention.js';
import { QUEUES } from '../../src/jobs/queue-names.js';
import { DeliveryRecorder } from '../../src/outbound/delivery-recorder.js';
import { startRetentionSweeper, type RetentionSweeperOptions } from '../../src/workers/retention-sweeper.js';
import { startWorkerTier } from '../../src/workers/worker-tier.js';
import { databaseUrl } from '../support/database.js';
import {
  createBotWithEndpoint,
  dropPrefix,
  REDIS_URL,
  startHarness,
  testConfig,
  uniquePrefix,
  waitFor,
} from '../support/harness.js';

const DAYS = loadConfig({}).retention;
const log = createLogger('silent');

let db: Db;
let redis: Redis;
let botId: string;
const prefix = uniquePrefix();
let nextChat = 5_000;
let nextOrder = 1_000;
const order = () => (nextOrder += 10);

beforeAll(async () => {
  db = createDb(databaseUrl());
  redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  botId = (await insertBot(db, { name: 'retention', timezone: 'UTC', telegram: null })).id;
});
afterAll(async () => {
  await db?.destroy();
  await dropPrefix(prefix);
  redis?.disconnect();
});

/** A sweeper that never runs on its own (the test runs it), with small batches. */
function sweeper(options: Partial<RetentionSweeperOptions> = {}) {
  return startRetentionSweeper({
    db,
    redis,
    prefix,
    log,
    days: DAYS,
    firstRunDelayMs: 3_600_000,
    batchSize: 3,
    pauseMs: 0,
    ...options,
  });
}

async function runOnce(options: Partial<RetentionSweeperOptions> = {}) {
  const s = sweeper(options);
  try {
    return await s.runOnce();
  } finally {
    await s.stop();
  }
}

const ago = (days: number) => db.raw('now() - ?::interval', [`${days} days`]);

async function newDialog(): Promise<number> {
  const chatId = nextChat++;
  await applyDialogUpdates(db, [{ botId, chatId, seq: order(), patch: { fields: { created: 'yes' } } }]);
  return chatId;
}

/** Journals an input, then sets its state and age. */
async function input(
  chatId: number,
  state: string,
  days: number,
  payload: DialogInput = { kind: 'move', stepKey: 's' },
  dedupeKey: string | null = null,
): Promise<number> {
  const seq = order();
  const row: NewInput = { botId, chatId, seq, input: payload, dedupeKey };
  await journalInputs(db, [row]);
  await db('dialog_inputs')
    .where({ bot_id: botId, chat_id: chatId, seq })
    .update({ state, updated_at: ago(days), created_at: ago(days), ...(state === 'acting' ? { effects: '[]' } : {}) });
  return seq;
}

const inputSeqs = async () =>
  (await db('dialog_inputs').where({ bot_id: botId }).orderBy('seq').select('seq')).map((r) => Number(r.seq));

async function delivery(state: string, finishedDaysAgo: number | null, createdDaysAgo = 60): Promise<string> {
  const id = randomUUID();
  await db('deliveries').insert({
    id,
    bot_id: botId,
    message_id: `msg_${id}`,
    method: 'POST',
    url: 'https://example.com/hook',
    state,
    attempt_count: 2,
    created_at: ago(createdDaysAgo),
    updated_at: ago(finishedDaysAgo ?? createdDaysAgo),
    finished_at: finishedDaysAgo === null ? null : ago(finishedDaysAgo),
  });
  for (const attempt of [1, 2])
    await db('delivery_attempts').insert({
      delivery_id: id,
      attempt,
      started_at: ago(createdDaysAgo),
      duration_ms: 10,
    });
  return id;
}

async function message(chatId: number, days: number): Promise<number> {
  const [row] = await db('dialog_messages')
    .insert({ bot_id: botId, chat_id: chatId, direction: 'in', text: 'hi', created_at: ago(days) })
    .returning('id');
  return Number((row as { id: number }).id);
}

async function click(days: number, claimedBy: number | null = null): Promise<string> {
  const token = randomUUID().replaceAll('-', '').slice(0, 16);
  const [row] = await db('clicks')
    .insert({
      bot_id: botId,
      token,
      clickid: token,
      fields: JSON.stringify({ clickid: token }),
      created_at: ago(days),
      ...(claimedBy === null ? {} : { claimed_chat_id: claimedBy, claimed_seq: order(), claimed_at: ago(days) }),
    })
    .returning('id');
  return (row as { id: string }).id;
}

async function waiting(clickId: string, days: number): Promise<number> {
  const seq = order();
  await db('click_waiting_updates').insert({ click_id: clickId, seq, job: '{}', created_at: ago(days) });
  return seq;
}

async function conversionEvent(days: number): Promise<number> {
  const [row] = await db('conversion_events')
    .insert({
      bot_id: botId,
      clickid: 'c1',
      event: 'default',
      tid: randomUUID(),
      status: 'sale',
      outcome: 'new',
      created_at: ago(days),
    })
    .returning('id');
  return Number((row as { id: number }).id);
}

const ids = async (table: string, column = 'id') =>
  (await db(table).orderBy(column).select(column)).map((r: Record<string, unknown>) => String(r[column]));

describe('a retention run', () => {
  it('deletes what is old and finished, and keeps everything still needed', async () => {
    const chat = await newDialog();
    const other = await newDialog();

    // Inputs (handled: 2 days; dead: 30 days).
    const oldDone = await input(chat, 'done', 3);
    const oldSuperseded = await input(chat, 'superseded', 3);
    const recentDone = await input(chat, 'done', 1);
    const oldPending = await input(chat, 'pending', 10);
    const oldActing = await input(chat, 'acting', 10);
    const oldDead = await input(chat, 'dead', 31);
    const recentDead = await input(chat, 'dead', 10);
    // A dead delay the dialog still holds: deleting it would let the sweeper fire it again.
    const scheduledBy = order();
    const timer: DialogTimer = {
      scheduledBy,
      at: new Date(Date.now() + 86_400_000).toISOString(),
      stepId: randomUUID(),
      stepKey: 'later',
    };
    const fired: DialogInput = { kind: 'timer', scheduledBy, stepId: timer.stepId, stepKey: timer.stepKey };
    const heldDeadTimer = await input(chat, 'dead', 31, fired, `timer:${scheduledBy}`);
    await db('dialogs')
      .where({ bot_id: botId, chat_id: chat })
      .update({ timer: JSON.stringify(timer), timer_at: timer.at });

    // Clicks and what waits on them (30 days), with orders below the journal's highest.
    const oldUnclaimed = await click(31);
    const oldUnclaimedWaited = await click(31);
    const oldWaiting = await waiting(oldUnclaimedWaited, 31);
    const oldClaimed = await click(31, chat);
    const claimedWaiting = await waiting(oldClaimed, 31);
    const stillWaitedOn = await click(31);
    const recentWaiting = await waiting(stillWaitedOn, 10);
    const recentUnclaimed = await click(10);

    // The journal's highest input: old and handled, yet it stays (the order counter's floor).
    const highest = await input(other, 'done', 3);

    const oldDelivered = await delivery('succeeded', 31);
    const oldGivenUp = await delivery('failed', 31);
    const recentDelivered = await delivery('succeeded', 29);
    const oldPendingDelivery = await delivery('pending', null, 60);

    const oldMessage = await message(chat, 91);
    const recentMessage = await message(chat, 89);

    const oldEvent = await conversionEvent(91);
    const recentEvent = await conversionEvent(10);
    await db('conversions').insert({
      bot_id: botId,
      clickid: 'c1',
      event: 'default',
      tid: 't1',
      status: 'sale',
      created_at: ago(400),
    });

    const floorBefore = await highestSequence(db);
    const run = await runOnce();

    expect(run?.deleted).toEqual({
      deliveries: 2,
      dialog_messages: 1,
      handled_inputs: 2,
      dead_inputs: 1,
      conversion_events: 1,
      click_waiting_updates: 1,
      unclaimed_clicks: 2,
    });
    expect(await inputSeqs()).toEqual(
      [recentDone, oldPending, oldActing, recentDead, heldDeadTimer, highest].sort((a, b) => a - b),
    );
    for (const gone of [oldDone, oldSuperseded, oldDead]) expect(await inputSeqs()).not.toContain(gone);
    expect(await highestSequence(db)).toBe(floorBefore);

    expect(await ids('deliveries')).toEqual([recentDelivered, oldPendingDelivery].sort());
    expect(
      (await ids('delivery_attempts', 'delivery_id')).filter((id) => [oldDelivered, oldGivenUp].includes(id)),
    ).toEqual([]);
    expect(await db('delivery_attempts').whereIn('delivery_id', [recentDelivered, oldPendingDelivery])).toHaveLength(4);

    expect(await ids('dialog_messages')).toEqual([String(recentMessage)]);
    expect(await ids('dialog_messages')).not.toContain(String(oldMessage));
    expect(await ids('conversion_events')).toEqual([String(recentEvent)]);
    expect(await ids('conversion_events')).not.toContain(String(oldEvent));
    expect(await db('conversions').where({ bot_id: botId })).toHaveLength(1);

    expect(await ids('clicks')).toEqual([oldClaimed, stillWaitedOn, recentUnclaimed].sort());
    expect(await ids('clicks')).not.toContain(oldUnclaimed);
    expect((await db('click_waiting_updates').orderBy('seq').select('seq')).map((r) => Number(r.seq))).toEqual([
      claimedWaiting,
      recentWaiting,
    ]);
    expect(oldWaiting).toBeLessThan(claimedWaiting);
    expect(await db('dialogs').where({ bot_id: botId })).toHaveLength(2);
  });

  it("keeps the journal's highest input only until a newer one is journaled", async () => {
    const chat = await newDialog();
    const lone = await input(chat, 'done', 3);
    await runOnce();
    expect(await inputSeqs()).toContain(lone);
    const newer = await input(chat, 'pending', 0);
    await runOnce();
    expect(await inputSeqs()).not.toContain(lone);
    expect(await inputSeqs()).toContain(newer);
  });

  it('deletes in batches, at most maxBatchesPerRun a table, and the next run goes on', async () => {
    const chat = await newDialog();
    await db('dialog_messages').delete();
    for (let i = 0; i < 25; i++) await message(chat, 100);
    const first = await runOnce({ batchSize: 10, maxBatchesPerRun: 2 });
    expect(first?.deleted.dialog_messages).toBe(20);
    expect(first?.capped).toBe(true);
    expect(await db('dialog_messages')).toHaveLength(5);
    const second = await runOnce({ batchSize: 10, maxBatchesPerRun: 2 });
    expect(second?.deleted.dialog_messages).toBe(5);
    expect(second?.capped).toBe(false);
    expect(await db('dialog_messages')).toHaveLength(0);
  });

  it('runs again soon, not after the interval, when a run stopped at its cap', async () => {
    const chat = await newDialog();
    for (let i = 0; i < 25; i++) await message(chat, 100);
    const s = sweeper({ firstRunDelayMs: 0, intervalMs: 3_600_000, catchUpMs: 20, batchSize: 5, maxBatchesPerRun: 1 });
    try {
      await waitFor(async () => (await db('dialog_messages')).length === 0, 10_000, 'old messages deleted');
    } finally {
      await s.stop();
    }
  });

  it('is run by one process at a time', async () => {
    const chat = await newDialog();
    await message(chat, 100);
    const [a, b] = [sweeper(), sweeper()];
    try {
      const runs = await Promise.all([a.runOnce(), b.runOnce()]);
      expect(runs.filter((run) => run === null)).toHaveLength(1);
      expect(runs.find((run) => run !== null)?.deleted.dialog_messages).toBe(1);
      // The lock is let go at the end of a run.
      expect(await b.runOnce()).not.toBeNull();
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  it("cleans finished jobs by their queue's retention, also when no other job finishes", async () => {
    const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    const queue = new Queue(QUEUES.stepRuns, { connection, prefix });
    const worker = new Worker(
      QUEUES.stepRuns,
      async (job: Job) => {
        if (job.name === 'bad') throw new Error('boom');
      },
      { connection: new Redis(REDIS_URL, { maxRetriesPerRequest: null }), prefix },
    );
    try {
      const ok = await queue.add('ok', {});
      const bad = await queue.add('bad', {}, { attempts: 1 });
      const fresh = await queue.add('ok', {});
      await waitFor(async () => (await queue.getJobCounts('completed', 'failed')).failed === 1, 10_000, 'jobs done');
      await waitFor(async () => (await queue.getJobCounts('completed')).completed === 2, 10_000, 'jobs done');
      // Finished long ago (older than their queue keeps them), as Redis records it.
      const backdate = async (id: string, set: string, ms: number) => {
        const at = Date.now() - ms;
        await connection.hset(`${prefix}:${QUEUES.stepRuns}:${id}`, 'finishedOn', at);
        await connection.zadd(`${prefix}:${QUEUES.stepRuns}:${set}`, at, id);
      };
      await backdate(ok.id!, 'completed', 2 * 3_600_000);
      await backdate(bad.id!, 'failed', 8 * 86_400_000);
      const run = await runOnce({ queues: [queue] });
      expect(run?.jobs[QUEUES.stepRuns]).toBe(2);
      expect(await queue.getJob(ok.id!)).toBeUndefined();
      expect(await queue.getJob(bad.id!)).toBeUndefined();
      expect(await queue.getJob(fresh.id!)).toBeDefined();
    } finally {
      await worker.close();
      await queue.close();
      connection.disconnect();
    }
  });
});

describe('job retention', () => {
  it('every queue says how long it keeps finished jobs, as added by the code that adds them', async () => {
    const h = await startHarness();
    const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    const queue = (name: string) => new Queue(name, { connection, prefix: h.config.queuePrefix });
    const queues = {
      updates: queue(QUEUES.dialogUpdates),
      runs: queue(QUEUES.stepRuns),
      chains: queue(QUEUES.outboundWebhooks),
      batches: queue(QUEUES.outboundBatches),
    };
    try {
      // dialog-updates: a postback.
      const { botId: apiBot, url } = await createBotWithEndpoint(h);
      const accepted = await fetch(`${url}?chatId=42&score=1`);
      expect(accepted.status).toBe(202);
      const { updateId } = (await accepted.json()) as { updateId: string };
      const update = (await queues.updates.getJob(updateId))!;

      // step-runs: a dead input put back by the management API wakes its dialog.
      const seq = 9_000_000;
      await applyDialogUpdates(h.db, [{ botId: apiBot, chatId: 43, seq, patch: { fields: { a: '1' } } }]);
      await journalInputs(h.db, [
        { botId: apiBot, chatId: 43, seq: seq + 1, input: { kind: 'move', stepKey: 'x' }, dedupeKey: null },
      ]);
      expect(await failInput(h.db, { botId: apiBot, chatId: 43 }, seq + 1, 'boom', 1)).toBe('dead');
      expect((await h.api('POST', `/api/v1/bots/${apiBot}/dead-letters/43/${seq + 1}/retry`)).status).toBe(202);
      const [run] = await queues.runs.getJobs(['waiting', 'delayed']);

      // outbound: one delivery gets a chain job, several recorded together a batch job.
      const recorder = new DeliveryRecorder(h.db, { chains: queues.chains, batches: queues.batches });
      const request = (i: number) => ({
        id: randomUUID(),
        chatId: null,
        stepId: null,
        request: {
          botId: apiBot,
          messageId: `msg_${i}`,
          method: 'POST',
          url: 'https://example.com/',
          headers: {},
          body: '{}',
        },
      });
      await recorder.recordAll([request(1)]);
      await recorder.recordAll([request(2), request(3), request(4)]);
      const [chain] = await queues.chains.getJobs(['waiting']);
      const [batch] = await queues.batches.getJobs(['waiting']);

      const found = { update, run, chain, batch };
      const expected = {
        update: JOB_RETENTION[QUEUES.dialogUpdates],
        run: JOB_RETENTION[QUEUES.stepRuns],
        chain: JOB_RETENTION[QUEUES.outboundWebhooks],
        batch: JOB_RETENTION[QUEUES.outboundBatches],
      };
      for (const [name, job] of Object.entries(found)) {
        expect(job, name).toBeDefined();
        const { removeOnComplete, removeOnFail } = job!.opts;
        expect({ removeOnComplete, removeOnFail }, name).toEqual(expected[name as keyof typeof expected]);
        // Every failed set is bounded in time and in size.
        expect(removeOnFail, name).toMatchObject({ age: expect.any(Number), count: expect.any(Number) });
        expect(removeOnComplete, name).toBeTruthy();
      }
      // A chain or batch job kept after completion would hold its id: removed at once.
      expect(chain!.opts.removeOnComplete).toBe(true);
      expect(batch!.opts.removeOnComplete).toBe(true);
    } finally {
      await Promise.all(Object.values(queues).map((q) => q.close()));
      connection.disconnect();
      await h.close();
    }
  });
});

describe('in a worker tier', () => {
  it('runs on its own, shortly after start and then every interval', async () => {
    const config = testConfig();
    const tierDb = createDb(config.databaseUrl);
    const tier = await startWorkerTier(config, tierDb, log, {
      poll: false,
      retention: { firstRunDelayMs: 20, intervalMs: 100, pauseMs: 0 },
    });
    try {
      const chat = await newDialog();
      const first = await message(chat, 100);
      await waitFor(async () => !(await ids('dialog_messages')).includes(String(first)), 10_000, 'first run');
      const second = await message(chat, 100);
      await waitFor(async () => !(await ids('dialog_messages')).includes(String(second)), 10_000, 'a later run');
    } finally {
      await tier.close();
      await tierDb.destroy();
      await dropPrefix(config.queuePrefix);
    }
  });
});
