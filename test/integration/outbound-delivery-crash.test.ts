// Outbound deliveries survive a worker process killed mid-delivery (worker processes of their own,
// spawned and killed; apart from outbound-delivery.test.ts so that these slow cases run beside it).
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordDelivery } from '../../src/runner/effects.js';
import {
  createBotWithEndpoint,
  dropPrefix,
  REDIS_URL,
  startHarness,
  waitFor,
  type Harness,
} from '../support/harness.js';
import { answer, recorderFor, startTarget } from '../support/outbound-target.js';

let h: Harness;
let botId: string;

// The same harness as outbound-delivery.test.ts: a worker tier of its own runs beside the processes.
beforeAll(async () => {
  h = await startHarness({
    workers: true,
    env: {
      OUTBOUND_ALLOW_CIDRS: '127.0.0.0/8,::1/128',
      OUTBOUND_RETRY_SCHEDULE: '0,0.2,0.2,0.2',
      OUTBOUND_TIMEOUT_MS: '1000',
      OUTBOUND_MAX_PER_HOST: '4',
    },
  });
  botId = (await createBotWithEndpoint(h)).botId;
});
afterAll(async () => {
  await h?.close();
});

async function attempts(id: string) {
  return h.db('delivery_attempts').where({ delivery_id: id }).orderBy(['chain', 'attempt']);
}

/** Worker processes of their own (one is killed), with a short lock so that another takes over soon. */
function crashEnv(suffix: string) {
  return {
    ...process.env,
    DATABASE_URL: h.config.databaseUrl,
    REDIS_URL,
    QUEUE_PREFIX: `${h.config.queuePrefix}_${suffix}`,
    OUTBOUND_ALLOW_CIDRS: '127.0.0.0/8',
    OUTBOUND_TIMEOUT_MS: '20000',
    QUEUE_LOCK_MS: '1000',
    PUBLIC_URL: 'https://flowpost.test',
    LOG_LEVEL: 'silent',
  };
}

function spawnWorker(env: NodeJS.ProcessEnv) {
  return spawn(process.execPath, ['--import', 'tsx', 'src/cli/worker.ts'], { env, stdio: 'ignore' });
}

// Each test has its worker processes, queue prefix and target of its own: they run at once.
describe.concurrent('crash safety', () => {
  it('a batch whose worker died is taken over: what was recorded is not sent again, the rest is', async () => {
    const hits = new Map<string, number>();
    const target = await startTarget((req, res) => {
      hits.set(req.url!, (hits.get(req.url!) ?? 0) + 1);
      if (req.url === '/hang' && hits.get('/hang') === 1) return; // its worker process dies meanwhile
      answer(200)(req, res);
    });
    const env = crashEnv('batchcrash');
    const queues = recorderFor(h.db, env.QUEUE_PREFIX);
    const first = spawnWorker(env);
    let second: ReturnType<typeof spawnWorker> | undefined;
    try {
      const ids = await Promise.all(
        ['/quick-1', '/hang', '/quick-2'].map((path) =>
          recordDelivery(
            { deliveries: queues.recorder },
            { botId, chatId: 1 },
            {
              type: 'send_webhook',
              stepId: '00000000-0000-4000-8000-000000000000',
              method: 'GET',
              url: `${target.url}${path}`,
              headers: {},
              body: null,
            },
          ),
        ),
      );
      expect(await queues.batches.getJobCounts('wait')).toEqual({ wait: 1 });
      const [quick1, hang, quick2] = ids as [string, string, string];
      await waitFor(
        async () => {
          const rows = await h.db('deliveries').whereIn('id', [quick1, quick2]).where({ state: 'succeeded' });
          return hits.get('/hang') === 1 && rows.length === 2;
        },
        20_000,
        'the quick deliveries recorded while the other hangs',
      );
      first.kill('SIGKILL');
      await new Promise((resolve) => first.once('exit', resolve));
      expect((await h.db('deliveries').where({ id: hang }).first()).state).toBe('pending');
      second = spawnWorker(env);
      const row = await waitFor(
        async () => {
          const found = await h.db('deliveries').where({ id: hang }).first();
          return found.state !== 'pending' ? found : null;
        },
        30_000,
        'the batch taken over',
      );
      expect(row.state).toBe('succeeded');
      expect(Object.fromEntries(hits)).toEqual({ '/quick-1': 1, '/hang': 2, '/quick-2': 1 });
      for (const id of ids) expect((await attempts(id)).map((a) => a.status)).toEqual([200]);
    } finally {
      first.kill('SIGKILL');
      second?.kill('SIGTERM');
      await target.close();
      await queues.close();
      await dropPrefix(env.QUEUE_PREFIX);
    }
  }, 60_000); // its own waits allow 20 s + 30 s, for worker processes started on a loaded machine

  it('a worker process killed mid-request leaves the delivery to be retried, never marked succeeded', async () => {
    let calls = 0;
    const target = await startTarget((req, res) => {
      calls++;
      if (calls === 1) return; // the first attempt hangs: its worker process dies meanwhile
      answer(200)(req, res);
    });
    const env = crashEnv('crash');
    const queues = recorderFor(h.db, env.QUEUE_PREFIX);
    const first = spawnWorker(env);
    let second: ReturnType<typeof spawnWorker> | undefined;
    try {
      const id = await recordDelivery(
        { deliveries: queues.recorder },
        { botId, chatId: 1 },
        {
          type: 'send_webhook',
          stepId: '00000000-0000-4000-8000-000000000000',
          method: 'GET',
          url: `${target.url}/crash`,
          headers: {},
          body: null,
        },
      );
      await waitFor(async () => calls === 1, 20_000, 'the first attempt');
      first.kill('SIGKILL');
      await new Promise((resolve) => first.once('exit', resolve));
      expect((await h.db('deliveries').where({ id }).first()).state).toBe('pending');
      second = spawnWorker(env);
      const row = await waitFor(
        async () => {
          const found = await h.db('deliveries').where({ id }).first();
          return found.state !== 'pending' ? found : null;
        },
        30_000,
        'the delivery taken over',
      );
      expect(row.state).toBe('succeeded');
      expect(calls).toBe(2);
      expect((await attempts(id)).map((a) => a.status)).toEqual([200]);
    } finally {
      first.kill('SIGKILL');
      second?.kill('SIGTERM');
      await target.close();
      await queues.close();
      await dropPrefix(env.QUEUE_PREFIX);
    }
  }, 60_000); // its own waits allow 20 s + 30 s, for worker processes started on a loaded machine
});
