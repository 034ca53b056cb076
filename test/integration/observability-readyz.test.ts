/**
 * /readyz answers 503 naming what keeps the process from its job: Redis (a private redis-server
 * stopped), Postgres (its connections go through a proxy that is cut), or a worker of the process
 * paused on a Postgres outage. /healthz stays 200 through all of it.
 */
import { Queue } from 'bullmq';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/config/log.js';
import { createDb, databaseTarget } from '../../src/db/connection.js';
import { startWebTier } from '../../src/http/server.js';
import { DIALOG_UPDATE_JOB } from '../../src/jobs/dialog-update-job.js';
import { QUEUES } from '../../src/jobs/queue-names.js';
import { pausedQueues } from '../../src/workers/pause-on-outage.js';
import { startWorkerTier } from '../../src/workers/worker-tier.js';
import { databaseUrl } from '../support/database.js';
import { dropPrefix, REDIS_URL, startHarness, testConfig, waitFor } from '../support/harness.js';
import { startPrivateRedis } from '../support/private-redis.js';
import { startTcpProxy } from '../support/tcp-proxy.js';

const log = createLogger(process.env.TEST_LOG_LEVEL ?? 'silent');
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});
afterAll(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function readyz(base: string): Promise<{ status: number; body: any }> {
  const started = Date.now();
  const response = await fetch(`${base}/readyz`);
  // Each check is bounded: the probe never hangs on a dependency.
  expect(Date.now() - started).toBeLessThan(2_500);
  return { status: response.status, body: await response.json() };
}

/** DATABASE_URL of this file's database, through `port`. */
function viaPort(port: number): string {
  const url = new URL(databaseUrl());
  url.port = String(port);
  return url.toString();
}

describe('GET /readyz', () => {
  it('is 200 with every check named while Postgres and Redis answer', async () => {
    const h = await startHarness({});
    cleanups.push(() => h.close());
    expect(await readyz(h.baseUrl)).toEqual({
      status: 200,
      body: { ok: true, checks: { postgres: { ok: true }, redis: { ok: true } } },
    });
  });

  it('is 503 naming redis when Redis is down', async () => {
    const redis = await startPrivateRedis();
    cleanups.push(() => redis.stop());
    // Tiers of its own: the harness would clean its prefix up in the Redis that is gone.
    const config = testConfig({ REDIS_URL: redis.url });
    const db = createDb(databaseTarget(config));
    cleanups.push(() => db.destroy());
    const web = await startWebTier(config, db, log);
    cleanups.push(() => web.close());
    const base = `http://127.0.0.1:${web.port}`;
    expect((await readyz(base)).status).toBe(200);
    await redis.stop();
    const down = await readyz(base);
    expect(down.status).toBe(503);
    expect(down.body.ok).toBe(false);
    expect(down.body.checks.postgres).toEqual({ ok: true });
    expect(down.body.checks.redis.ok).toBe(false);
    expect(typeof down.body.checks.redis.error).toBe('string');
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
  });

  it('is 503 naming postgres when Postgres cannot be reached', async () => {
    const proxy = await startTcpProxy(Number(new URL(databaseUrl()).port || 5432));
    cleanups.push(() => proxy.close());
    const h = await startHarness({ env: { DATABASE_URL: viaPort(proxy.port) } });
    cleanups.push(() => h.close());
    expect((await readyz(h.baseUrl)).status).toBe(200);
    await proxy.cut();
    const down = await readyz(h.baseUrl);
    expect(down.status).toBe(503);
    expect(down.body.checks.redis).toEqual({ ok: true });
    expect(down.body.checks.postgres.ok).toBe(false);
    expect(down.body.checks.postgres.error).not.toContain('@');
    expect((await fetch(`${h.baseUrl}/healthz`)).status).toBe(200);
  });

  it('is 503 naming postgres within its timeout when Postgres hangs', async () => {
    // A port that accepts connections and never answers.
    const { createServer } = await import('node:net');
    const sockets = new Set<import('node:net').Socket>();
    const silent = createServer((socket) => sockets.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    cleanups.push(
      () =>
        new Promise((resolve) => {
          for (const socket of sockets) socket.destroy();
          silent.close(resolve);
        }),
    );
    const port = (silent.address() as { port: number }).port;
    const h = await startHarness({ env: { DATABASE_URL: viaPort(port) } });
    cleanups.push(async () => {
      for (const socket of sockets) socket.destroy();
      await h.close();
    });
    const down = await readyz(h.baseUrl);
    expect(down.status).toBe(503);
    expect(down.body.checks.postgres).toEqual({ ok: false, error: 'no answer within 1000 ms' });
  });

  it('in a process running workers, is 503 naming the workers while one is paused on a Postgres outage', async () => {
    const proxy = await startTcpProxy(Number(new URL(databaseUrl()).port || 5432));
    cleanups.push(() => proxy.close());
    const config = testConfig();
    cleanups.push(() => dropPrefix(config.queuePrefix));
    // The workers reach Postgres through the proxy; the web tier directly: only the workers see the outage.
    const workerDb = createDb(databaseTarget({ ...config, databaseUrl: viaPort(proxy.port) }));
    const webDb = createDb(databaseTarget(config));
    cleanups.push(() => Promise.all([workerDb.destroy(), webDb.destroy()]));
    const workers = await startWorkerTier(config, workerDb, log, { poll: false });
    cleanups.push(() => workers.close());
    const web = await startWebTier(config, webDb, log, { pausedQueues: () => pausedQueues(workers.workers) });
    cleanups.push(() => web.close());
    const base = `http://127.0.0.1:${web.port}`;
    expect((await readyz(base)).body.checks.workers).toEqual({ ok: true });

    await proxy.cut();
    const updates = new Queue(QUEUES.dialogUpdates, { connection: { url: REDIS_URL }, prefix: config.queuePrefix });
    cleanups.push(() => updates.close());
    await updates.add(DIALOG_UPDATE_JOB, { botId: '00000000-0000-4000-8000-000000000001', chatId: 1, patch: {} });
    const down = await waitFor(
      async () => {
        const answer = await readyz(base);
        return answer.status === 503 ? answer : null;
      },
      10_000,
      'the dialog-updates worker to pause',
    );
    expect(down.body.checks.postgres).toEqual({ ok: true });
    expect(down.body.checks.redis).toEqual({ ok: true });
    expect(down.body.checks.workers.ok).toBe(false);
    expect(down.body.checks.workers.error).toContain(QUEUES.dialogUpdates);

    // Postgres back: the paused worker takes the job again, completes it, and counts as running.
    await proxy.restore();
    await waitFor(async () => (await readyz(base)).status === 200, 15_000, 'the workers to run again');
  });
});
