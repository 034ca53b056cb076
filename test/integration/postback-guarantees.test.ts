import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb } from '../../src/db/connection.js';
import { DIALOG_UPDATE_JOB } from '../../src/jobs/dialog-update-job.js';
import { QUEUES } from '../../src/jobs/queue-names.js';
import { idempotencyKey } from '../../src/redis/idempotency.js';
import { createLogger } from '../../src/config/log.js';
import { startWebTier } from '../../src/http/server.js';
import { startWorkerTier, type WorkerTier } from '../../src/workers/worker-tier.js';
import {
  createBotWithEndpoint,
  REDIS_URL,
  startHarness,
  testConfig,
  waitFor,
  type Harness,
} from '../support/harness.js';
import { startTcpProxy } from '../support/tcp-proxy.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ workers: false });
});
afterAll(async () => {
  await h?.close();
});

const log = createLogger('silent');

async function dialogRow(botId: string, chatId: number) {
  return h.db('dialogs').where({ bot_id: botId, chat_id: chatId }).first();
}

async function uploadSteps(botId: string, keys: string[]): Promise<Map<string, string>> {
  const res = await h.api('PUT', `/api/v1/bots/${botId}/script`, {
    start: keys[0],
    steps: keys.map((key) => ({ key, type: 'send_message', text: `step ${key}` })),
  });
  expect(res.status).toBe(200);
  return new Map(res.body.steps.map((s: { key: string; id: string }) => [s.key, s.id]));
}

describe('ordering', () => {
  it('500 updates of one dialog drained by 4 concurrent consumers end at the last values', async () => {
    const { botId, url } = await createBotWithEndpoint(h);
    const steps = await uploadSteps(botId, ['a', 'b', 'c']);
    const keys = [...steps.keys()];
    const chatId = 424242;
    // Accept the whole backlog first, in a known order, with no consumer running.
    for (let i = 1; i <= 500; i++) {
      const step = keys[i % 3]!;
      const res = await fetch(
        `${url}?chatId=${chatId}&userBalance=${i}&stepId=${step}&tags=t${i % 7}&removeTags=t${(i + 3) % 7}`,
      );
      expect(res.status).toBe(202);
    }
    const consumers: WorkerTier[] = [];
    const db = createDb(h.config.databaseUrl);
    for (let i = 0; i < 4; i++) {
      consumers.push(await startWorkerTier({ ...h.config, workerConcurrency: 16 }, db, log));
    }
    try {
      const row = await waitFor(
        async () => {
          const found = await dialogRow(botId, chatId);
          // Step moves go through the dialog's one order of inputs, handled one by one after the merge.
          const open = await h
            .db('dialog_inputs')
            .where({ bot_id: botId, chat_id: chatId })
            .whereIn('state', ['pending', 'acting'])
            .first('seq');
          return found && found.fields.userBalance === '500' && !open ? found : null;
        },
        40_000,
        'the last update',
      );
      // Let any straggling (older) batch finish, then check nothing older overwrote the newest.
      await new Promise((resolve) => setTimeout(resolve, 300));
      const final = await dialogRow(botId, chatId);
      expect(final.fields.userBalance).toBe('500');
      expect(final.step_id).toBe(steps.get(keys[500 % 3]!));
      expect(final.tags).toContain(`t${500 % 7}`);
      expect(final.tags).not.toContain(`t${(500 + 3) % 7}`);
      expect(Number(row.last_seq)).toBeGreaterThan(0);
      const counts = consumers.map((c) => c.workers[0]!.isRunning());
      expect(counts.every(Boolean)).toBe(true);
    } finally {
      await Promise.all(consumers.map((c) => c.close()));
      await db.destroy();
    }
    // Accepting 500 postbacks one by one, then four worker tiers in this process: a minute on a
    // machine busy with the other test files.
  }, 60_000);
});

describe('idempotency', () => {
  it('a repeated eventId within 24 h is acknowledged with the first updateId and not applied again', async () => {
    const { botId, url } = await createBotWithEndpoint(h);
    const workers = await startWorkerTier(h.config, h.db, log);
    try {
      const first = await fetch(`${url}?chatId=77&userBalance=1&eventId=sale-1`);
      expect(first.status).toBe(202);
      const firstBody = (await first.json()) as { updateId: string };
      await waitFor(async () => (await dialogRow(botId, 77))?.fields.userBalance === '1');

      expect((await fetch(`${url}?chatId=77&userBalance=2`)).status).toBe(202);
      await waitFor(async () => (await dialogRow(botId, 77))?.fields.userBalance === '2');

      const repeat = await fetch(`${url}?chatId=77&userBalance=1&eventId=sale-1`);
      expect(repeat.status).toBe(200);
      expect(await repeat.json()).toEqual({ ok: true, duplicate: true, updateId: firstBody.updateId });

      const viaHeader = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': 'sale-1' },
        body: JSON.stringify({ chatId: 77, userBalance: 1 }),
      });
      expect(viaHeader.status).toBe(200);
      expect(((await viaHeader.json()) as { updateId: string }).updateId).toBe(firstBody.updateId);

      // Another bot may use the same event id.
      const other = await createBotWithEndpoint(h);
      expect((await fetch(`${other.url}?chatId=77&eventId=sale-1`)).status).toBe(202);

      await new Promise((resolve) => setTimeout(resolve, 500));
      expect((await dialogRow(botId, 77)).fields.userBalance).toBe('2');
    } finally {
      await workers.close();
    }
  });

  it('a repeat of an eventId whose first request is still being queued is answered 503 with Retry-After: 1, never a 4xx', async () => {
    const { endpointId, url } = await createBotWithEndpoint(h);
    const redis = new Redis(REDIS_URL);
    try {
      // The first request's claim, as it stands while its job is being added.
      const key = idempotencyKey(h.config.queuePrefix, { endpointId, route: 'updateDialog' }, 'lead-9');
      await redis.set(key, 'pending:first', 'PX', 30_000);
      const repeat = await fetch(`${url}?chatId=78&eventId=lead-9`);
      expect(repeat.status).toBe(503);
      expect(repeat.headers.get('retry-after')).toBe('1');
      expect(((await repeat.json()) as { error: { code: string } }).error.code).toBe('request_in_progress');
    } finally {
      redis.disconnect();
    }
  });
});

describe('outages', () => {
  it('answers 503 with Retry-After within a second when Redis is unreachable, and queues nothing', async () => {
    const { url } = await createBotWithEndpoint(h);
    const config = testConfig({ REDIS_URL: 'redis://127.0.0.1:1' });
    const web = await startWebTier(config, h.db, log);
    try {
      const path = new URL(url).pathname;
      const started = Date.now();
      const res = await fetch(`http://127.0.0.1:${web.port}${path}?chatId=5&refID=1`);
      const elapsed = Date.now() - started;
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBeTruthy();
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('queue_unavailable');
      expect(elapsed).toBeLessThan(1000);
    } finally {
      await web.close();
    }
  });

  it('applies updates accepted while Postgres is unreachable once it returns', async () => {
    const { botId, url } = await createBotWithEndpoint(h);
    const proxy = await startTcpProxy(5432);
    const dbUrl = new URL(h.config.databaseUrl);
    dbUrl.port = String(proxy.port);
    const workerDb = createDb(dbUrl.toString());
    const workers = await startWorkerTier(h.config, workerDb, log);
    try {
      await proxy.cut();
      for (let i = 1; i <= 20; i++) {
        expect((await fetch(`${url}?chatId=99&userBalance=${i}`)).status).toBe(202);
      }
      await new Promise((resolve) => setTimeout(resolve, 1500));
      expect(await dialogRow(botId, 99)).toBeUndefined();

      await proxy.restore();
      const row = await waitFor(
        async () => {
          const found = await dialogRow(botId, 99);
          return found?.fields.userBalance === '20' ? found : null;
        },
        20_000,
        'updates after Postgres returned',
      );
      expect(row.fields.userBalance).toBe('20');
    } finally {
      await workers.close();
      await workerDb.destroy();
      await proxy.close();
    }
  });
});

describe('order counter', () => {
  it("keeps new updates newer than applied ones when Redis loses the queue's id counter", async () => {
    const { botId, url } = await createBotWithEndpoint(h);
    const workers = await startWorkerTier(h.config, h.db, log);
    const admin = new Redis(REDIS_URL);
    try {
      for (let i = 1; i <= 5; i++) expect((await fetch(`${url}?chatId=31&userBalance=${i}`)).status).toBe(202);
      await waitFor(async () => (await dialogRow(botId, 31))?.fields.userBalance === '5');

      // Redis comes back empty: the counter is gone and every client reconnects.
      await admin.del(`${h.config.queuePrefix}:dialog-updates:id`);
      const clients = (await admin.client('LIST')) as string;
      const ours = clients
        .split('\n')
        .filter((line) => line.includes(`name=${h.config.queuePrefix}:`))
        .map((line) => /\bid=(\d+)/.exec(line)![1]!);
      expect(ours.length).toBeGreaterThan(0);
      for (const id of ours) await admin.client('KILL', 'ID', id);

      await waitFor(
        async () => Number(await admin.get(`${h.config.queuePrefix}:dialog-updates:id`)) >= 5,
        5_000,
        'the counter restored',
      );
      const res = await waitFor(
        async () => {
          const r = await fetch(`${url}?chatId=31&userBalance=6`);
          return r.status === 202 ? r : null;
        },
        5_000,
        'the web tier reconnected',
      );
      expect(Number(((await res.json()) as { updateId: string }).updateId)).toBeGreaterThan(5);
      await waitFor(
        async () => (await dialogRow(botId, 31))?.fields.userBalance === '6',
        10_000,
        'the new update applied',
      );
    } finally {
      admin.disconnect();
      await workers.close();
    }
  });
});

describe('a poison update', () => {
  it('does not hold back the other updates of its batch', async () => {
    const { botId } = await createBotWithEndpoint(h);
    const queue = new Queue(QUEUES.dialogUpdates, { connection: { url: REDIS_URL }, prefix: h.config.queuePrefix });
    // Postgres refuses U+0000 in jsonb: the web tier refuses it, but another producer might not.
    // One attempt each: the good updates must succeed the first time, beside the poison one.
    const opts = { attempts: 1 };
    const [, poison] = await queue.addBulk([
      { name: DIALOG_UPDATE_JOB, data: { botId, chatId: 51, patch: { fields: { ok: 'a' } } }, opts },
      { name: DIALOG_UPDATE_JOB, data: { botId, chatId: 52, patch: { fields: { bad: 'x\u0000y' } } }, opts },
      { name: DIALOG_UPDATE_JOB, data: { botId, chatId: 53, patch: { fields: { ok: 'b' } } }, opts },
    ]);
    const workers = await startWorkerTier(h.config, h.db, log);
    try {
      await waitFor(
        async () => (await dialogRow(botId, 51))?.fields.ok === 'a' && (await dialogRow(botId, 53))?.fields.ok === 'b',
      );
      expect(await waitFor(async () => ((await poison!.getState()) === 'failed' ? 'failed' : null))).toBe('failed');
      expect(await dialogRow(botId, 52)).toBeUndefined();
    } finally {
      await workers.close();
      await queue.close();
    }
  });
});
