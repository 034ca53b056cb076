/**
 * SIGTERM under load, as a platform sends it before it kills the process 30 s later (Heroku): real
 * web and worker processes, postbacks at a steady rate. Every request the web process had
 * accepted is answered, every postback answered 2xx is applied once a fresh worker runs, no job is
 * left active, and both processes exit 0 well inside the 30 s.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QUEUES } from '../../src/jobs/queue-names.js';
import { databaseUrl } from '../support/database.js';
import { startFakeTelegram, type FakeTelegram } from '../support/fake-telegram.js';
import { ADMIN_KEY, dropPrefix, REDIS_URL, uniquePrefix, waitFor } from '../support/harness.js';
import { freePort } from '../support/free-port.js';

/** Heroku's grace between SIGTERM and SIGKILL. */
const PLATFORM_GRACE_MS = 30_000;
const RATE_PER_SECOND = 100;

interface Proc {
  child: ChildProcess;
  output: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with the first log line `match` accepts. */
  logLine(match: (line: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>;
}

const procs: Proc[] = [];

function run(script: string, env: Record<string, string>): Proc {
  // Straight to node (not npx or npm): the signal reaches the process under test.
  const child = spawn(process.execPath, ['--import', 'tsx', `src/cli/${script}.ts`], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const proc: Proc = {
    child,
    output: '',
    exited: new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal }))),
    logLine: (match) =>
      waitFor(
        async () => {
          for (const text of proc.output.split('\n')) {
            if (!text.startsWith('{')) continue;
            const line = JSON.parse(text) as Record<string, unknown>;
            if (match(line)) return line;
          }
          if (child.exitCode !== null) throw new Error(`${script} exited:\n${proc.output}`);
          return null;
        },
        60_000,
        `a log line of ${script}`,
        20,
      ),
  };
  child.stdout.on('data', (chunk: Buffer) => (proc.output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (proc.output += chunk.toString()));
  procs.push(proc);
  return proc;
}

/**
 * Sends SIGTERM and measures how long the process takes to exit. Twice, as a process started by
 * `npm run` gets it: from the platform and forwarded by npm.
 */
async function terminate(proc: Proc): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }> {
  const sent = Date.now();
  proc.child.kill('SIGTERM');
  setTimeout(() => proc.child.exitCode === null && proc.child.kill('SIGTERM'), 20);
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), PLATFORM_GRACE_MS);
  const exit = await proc.exited;
  clearTimeout(timer);
  return { ...exit, ms: Date.now() - sent };
}

interface Sent {
  chatId: number;
  startedAt: number;
  /** The HTTP status, or the error code when no answer came. */
  outcome: number | string;
}

/**
 * Postbacks at a steady rate, each to its own chat, until stopped. Over at most 32 keep-alive
 * connections, as a platform's router keeps (an unbounded client opens hundreds of connections
 * whenever the machine stalls, and overflows the listen backlog).
 */
function drivePostbacks(url: string): { sent: Sent[]; stop(): Promise<void> } {
  const agent = new Agent({ connections: 32, keepAliveTimeout: 60_000 });
  const sent: Sent[] = [];
  const pending = new Set<Promise<void>>();
  let chatId = 1_000;
  const started = Date.now();
  const send = () => {
    const record: Sent = { chatId: chatId++, startedAt: Date.now(), outcome: 'pending' };
    sent.push(record);
    const attempt = request(`${url}?chatId=${record.chatId}&n=${record.chatId}`, { dispatcher: agent })
      .then(async (response) => {
        await response.body.arrayBuffer();
        record.outcome = response.statusCode;
      })
      .catch((error: unknown) => {
        record.outcome = (error as { code?: string }).code ?? String(error);
      })
      .finally(() => pending.delete(attempt));
    pending.add(attempt);
  };
  // Catches up when a tick comes late, so the rate holds on average.
  const timer = setInterval(() => {
    const due = Math.floor(((Date.now() - started) * RATE_PER_SECOND) / 1_000);
    while (sent.length < due) send();
  }, 1_000 / RATE_PER_SECOND);
  return {
    sent,
    stop: async () => {
      clearInterval(timer);
      await Promise.all([...pending]);
      await agent.close();
    },
  };
}

let telegram: FakeTelegram;
const prefix = uniquePrefix();
beforeAll(async () => {
  telegram = await startFakeTelegram();
});
afterAll(async () => {
  for (const proc of procs)
    if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill('SIGKILL');
  await telegram?.close();
  await dropPrefix(prefix);
});

describe('SIGTERM under load', () => {
  it('answers every accepted request, loses no accepted postback, and exits 0 well inside 30 s', async () => {
    const port = await freePort();
    const env = {
      DATABASE_URL: databaseUrl(),
      REDIS_URL,
      QUEUE_PREFIX: prefix,
      PORT: String(port),
      ADMIN_API_KEY: ADMIN_KEY,
      TELEGRAM_API_ROOT: telegram.apiRoot,
      NODE_ENV: 'production',
      LOG_LEVEL: 'info',
    };
    const web = run('web', env);
    const worker = run('worker', env);
    await web.logLine((line) => line.msg === 'web tier listening');
    await worker.logLine((line) => line.msg === 'workers running');

    const base = `http://127.0.0.1:${port}`;
    const api = async (path: string, body: unknown) => {
      const response = await fetch(`${base}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      expect(response.status).toBe(201);
      return (await response.json()) as { id: string };
    };
    const bot = await api('/api/v1/bots', { name: 'shutdown' });
    const endpoint = await api(`/api/v1/bots/${bot.id}/webhooks`, { name: 'tracker', rateLimit: 1_000_000 });

    const load = drivePostbacks(`${base}/api/bots/webhooks/${endpoint.id}/updateDialog`);
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    const workerExit = await terminate(worker);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const webTermAt = Date.now();
    const webExit = await terminate(web);
    await new Promise((resolve) => setTimeout(resolve, 500));
    await load.stop();

    console.info(
      `SIGTERM to exit under ${RATE_PER_SECOND} postbacks/s: worker ${workerExit.ms} ms, web ${webExit.ms} ms; ` +
        `${load.sent.length} postbacks sent`,
    );
    expect(workerExit, worker.output.slice(-3000)).toMatchObject({ code: 0, signal: null });
    expect(webExit, web.output.slice(-3000)).toMatchObject({ code: 0, signal: null });
    expect(workerExit.ms).toBeLessThan(PLATFORM_GRACE_MS / 2);
    expect(webExit.ms).toBeLessThan(PLATFORM_GRACE_MS / 2);

    // Every request that reached the web process was answered: none was cut off, before or after
    // the SIGTERM. After it, new connections are refused (requests never sent), which is fine. A
    // request a client writes on an idle keep-alive connection just as the server closes it (after
    // the idle grace) is reset unread, HTTP/1.1's keep-alive race: it is not accepted, so not owed
    // (checked below: its postback is never applied).
    const resetUnread = load.sent.filter((s) => s.outcome === 'ECONNRESET' && s.startedAt >= webTermAt);
    expect(
      load.sent.filter(
        (s) => typeof s.outcome !== 'number' && s.outcome !== 'ECONNREFUSED' && !resetUnread.includes(s),
      ),
    ).toEqual([]);
    expect(load.sent.filter((s) => s.outcome === 202 && s.startedAt < webTermAt).length).toBeGreaterThan(
      RATE_PER_SECOND,
    );
    expect(load.sent.some((s) => s.outcome === 'ECONNREFUSED' && s.startedAt >= webTermAt)).toBe(true);
    // Answered 503 when Redis is too slow to take it in time: not accepted, so not owed.
    expect(load.sent.filter((s) => typeof s.outcome === 'number' && s.outcome !== 202 && s.outcome !== 503)).toEqual(
      [],
    );

    // No job was left active by the worker: finished, or back in the queue.
    const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    try {
      for (const name of [QUEUES.dialogUpdates, QUEUES.stepRuns]) {
        const queue = new Queue(name, { connection: redis, prefix });
        expect(await queue.getActiveCount(), name).toBe(0);
        await queue.close();
      }
    } finally {
      redis.disconnect();
    }

    // A fresh worker applies every postback answered 202.
    const accepted = load.sent.filter((s) => s.outcome === 202).map((s) => s.chatId);
    const fresh = run('worker', env);
    await fresh.logLine((line) => line.msg === 'workers running');
    const pg = await import('pg');
    const client = new pg.default.Client({ connectionString: databaseUrl() });
    await client.connect();
    try {
      const missing = await waitFor(
        async () => {
          const { rows } = await client.query<{ chat_id: number }>(
            "SELECT chat_id FROM dialogs WHERE bot_id = $1 AND fields->>'n' = chat_id::text",
            [bot.id],
          );
          const applied = new Set(rows.map((r) => Number(r.chat_id)));
          const left = accepted.filter((chatId) => !applied.has(chatId));
          return left.length === 0 ? left : null;
        },
        30_000,
        'every accepted postback applied',
        100,
      ).catch(() => 'some accepted postbacks were not applied');
      expect(missing).toEqual([]);
      if (resetUnread.length > 0) {
        console.info(`${resetUnread.length} postbacks reset unread on idle keep-alive connections`);
        const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
        const queue = new Queue(QUEUES.dialogUpdates, { connection: redis, prefix });
        try {
          await waitFor(
            async () => (await queue.getWaitingCount()) + (await queue.getActiveCount()) === 0,
            30_000,
            'the fresh worker to finish the queue',
          );
        } finally {
          await queue.close();
          redis.disconnect();
        }
        const { rows } = await client.query<{ chat_id: number }>(
          'SELECT chat_id FROM dialogs WHERE bot_id = $1 AND chat_id = ANY($2::bigint[])',
          [bot.id, resetUnread.map((s) => s.chatId)],
        );
        expect(rows, 'a reset postback was applied: the server had read it').toEqual([]);
      }
    } finally {
      await client.end();
    }
    const freshExit = await terminate(fresh);
    console.info(`idle worker SIGTERM to exit: ${freshExit.ms} ms`);
    expect(freshExit).toMatchObject({ code: 0, signal: null });
  }, 240_000);
});
