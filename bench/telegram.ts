import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Api } from 'grammy';
import { Pool } from 'undici';
import { startFakeTelegram, type FakeTelegram } from '../test/support/fake-telegram.js';
import { watchCpu } from './lib/cpu.js';
import type { BenchDatabase } from './lib/database.js';
import { percentile } from './lib/stats.js';
import { freePort, runScript, waitForHttp, type Child } from './lib/processes.js';
import { dropPrefix, REDIS_URL } from './lib/redis.js';

const ADMIN_KEY = 'bench-admin-key-0123456789';
const CHATS = Number(process.env.BENCH_TELEGRAM_CHATS ?? 2000);
const STEPS = 5;
const RATES = [200, 1_000];
const POSTBACKS = Number(process.env.BENCH_LATENCY_POSTBACKS ?? 2000);
/** Worker processes in (c) and (d) (default one). */
const WORKERS = Number(process.env.BENCH_WORKERS ?? 1);

export interface LatencyFigures {
  rate: number;
  postbacks: number;
  p50: number;
  p99: number;
  max: number;
  /** CPU ms per postback in the bench process (load generator and fake Bot API), the web and the worker processes. */
  cpuPerPostback: { bench: number | null; web: number | null; worker: number | null };
  /** Share of the machine's cores busy while the postbacks were sent and their messages arrived. */
  machineBusyPct: number | null;
}

export interface TelegramFigures {
  messagesPerSec: number;
  bareSendsPerSec: number;
  latency: LatencyFigures[];
  bareSendP50: number;
  bareSendP99: number;
}

async function waitForSends(fake: FakeTelegram, token: string, count: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (fake.callsOf('sendMessage', token).length < count) {
    if (Date.now() > deadline)
      throw new Error(`only ${fake.callsOf('sendMessage', token).length} of ${count} messages arrived`);
    await sleep(20);
  }
}

/** The ceiling for sending: grammY's sendMessage straight at the fake server, 64 at a time; then one at a time. */
async function bareSends(fake: FakeTelegram, count: number): Promise<{ perSec: number; p50: number; p99: number }> {
  const api = new Api('1:bench-bare-token-xxxxxxxxxxxxxxxxxxxx', { apiRoot: fake.apiRoot });
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next < count) {
        const i = next++;
        await api.sendMessage(1_000 + (i % CHATS), `bare ${i}`);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  // The floor for latency: one call at a time, the fake server unloaded.
  const single: number[] = [];
  for (let i = 0; i < 500; i++) {
    const t = performance.now();
    await api.sendMessage(1_000 + i, `single ${i}`);
    single.push(performance.now() - t);
  }
  single.sort((a, b) => a - b);
  return { perSec: count / seconds, p50: percentile(single, 50), p99: percentile(single, 99) };
}

/**
 * (c) messages/s: dialogs run a chain of send_message steps through one worker process to the
 *     fake Bot API, the per-bot and per-chat limits lifted, beside grammY sending straight to it.
 * (d) latency from a postback's stepId to the sendMessage at the fake server, over started
 *     dialogs, at a steady 200 and then 1,000 postbacks/s, beside the fake's own round trip.
 */
export async function benchTelegram(database: BenchDatabase): Promise<TelegramFigures> {
  const fake = await startFakeTelegram();
  const prefix = `fpb_${randomBytes(4).toString('hex')}`;
  const port = await freePort();
  const env = {
    DATABASE_URL: database.url,
    REDIS_URL,
    QUEUE_PREFIX: prefix,
    ADMIN_API_KEY: ADMIN_KEY,
    PUBLIC_URL: 'https://bench.flowpost.test',
    TELEGRAM_API_ROOT: fake.apiRoot,
    TELEGRAM_BOT_RATE_LIMIT: '0',
    TELEGRAM_CHAT_RATE_LIMIT: '0',
    WORKER_CONCURRENCY: '256',
  };
  const children: Child[] = [runScript('src/cli/web.ts', { ...env, PORT: String(port) })];
  const base = `http://127.0.0.1:${port}`;
  const api = async (method: string, path: string, body: unknown) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
    // Only the ids of the created bot and webhook are read from the answers.
    return (await res.json()) as { id: string };
  };
  try {
    await waitForHttp(`${base}/healthz`);
    const token = `4242:bench-token-${randomBytes(8).toString('hex')}`;
    const bot = await api('POST', '/api/v1/bots', { name: 'bench', telegramToken: token });
    const webhook = await api('POST', `/api/v1/bots/${bot.id}/webhooks`, { name: 'bench', rateLimit: 100_000 });
    const chain = Array.from({ length: STEPS }, (_, i) => ({
      key: `m${i}`,
      type: 'send_message',
      text: `Message ${i} for {{name}}`,
      ...(i < STEPS - 1 ? { next: `m${i + 1}` } : {}),
    }));
    await api('PUT', `/api/v1/bots/${bot.id}/script`, {
      start: 'm0',
      steps: [...chain, { key: 'target', type: 'send_message', text: 'n={{fields.n}}' }],
    });
    const row = await database.db('bots').where({ id: bot.id }).first<{ telegram_secret: string }>('telegram_secret');

    // Queue every /start first, then start the worker and time the whole backlog.
    for (let i = 0; i < CHATS; i++) {
      const update = {
        update_id: i + 1,
        message: {
          message_id: i + 1,
          date: 0,
          chat: { id: 1_000 + i, type: 'private' },
          from: { id: 1_000 + i, is_bot: false, first_name: 'Bench' },
          text: '/start',
        },
      };
      const res = await fetch(`${base}/telegram/${bot.id}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': row.telegram_secret },
        body: JSON.stringify(update),
      });
      if (res.status !== 200) throw new Error(`telegram update refused: ${res.status}`);
    }
    for (let i = 0; i < WORKERS; i++) children.push(runScript('src/cli/worker.ts', env));
    await waitForSends(fake, token, 1, 30_000);
    const first = performance.now();
    await waitForSends(fake, token, CHATS * STEPS, 120_000);
    const messagesPerSec = (CHATS * STEPS - 1) / ((performance.now() - first) / 1000);

    // Steady postbacks moving started dialogs to `target`, at each rate; match each to its message by `n`.
    const url = `${base}/api/bots/webhooks/${webhook.id}/updateDialog`;
    const latency: LatencyFigures[] = [];
    // The load generator sends through an undici pool: fetch() cost the bench process twice the CPU
    // per postback, on the same two cores as flowpost.
    const pool = new Pool(base, { connections: 64 });
    const path = new URL(url).pathname;
    let sentBefore = CHATS * STEPS;
    let n0 = 0;
    for (const rate of RATES) {
      const sentAt = new Map<number, number>();
      const startedAt = performance.now();
      const cpu = watchCpu([process.pid, ...children.map((child) => child.process.pid ?? -1)]);
      const timeOrigin = performance.timeOrigin;
      const inFlight: Promise<unknown>[] = [];
      for (let i = 0; i < POSTBACKS; i++) {
        const n = n0 + i;
        const due = startedAt + (i * 1000) / rate;
        const wait = due - performance.now();
        if (wait > 0) await sleep(wait);
        sentAt.set(n, timeOrigin + performance.now());
        inFlight.push(
          pool
            .request({ method: 'GET', path: `${path}?chatId=${1_000 + (i % CHATS)}&stepId=target&n=${n}` })
            .then((r) => r.body.dump()),
        );
      }
      await Promise.all(inFlight);
      await waitForSends(fake, token, sentBefore + POSTBACKS, 60_000);
      const used = cpu.stop();
      const perPostback = (ms: (number | null)[]) =>
        ms.some((value) => value === null) ? null : (ms as number[]).reduce((sum, value) => sum + value, 0) / POSTBACKS;
      const [benchMs = null, webMs = null, ...workerMs] = used.processMs;
      const latencies = fake
        .callsOf('sendMessage', token)
        .slice(sentBefore)
        .map((call) => call.at - sentAt.get(Number(String(call.params.text).slice(2)))!)
        .sort((a, b) => a - b);
      latency.push({
        rate,
        postbacks: POSTBACKS,
        p50: percentile(latencies, 50),
        p99: percentile(latencies, 99),
        max: latencies.at(-1) ?? 0,
        cpuPerPostback: { bench: perPostback([benchMs]), web: perPostback([webMs]), worker: perPostback(workerMs) },
        machineBusyPct: used.machineBusyPct,
      });
      sentBefore += POSTBACKS;
      n0 += POSTBACKS;
      await sleep(1_000);
    }
    await pool.close();
    const bare = await bareSends(fake, CHATS * STEPS);
    return {
      messagesPerSec,
      bareSendsPerSec: bare.perSec,
      latency,
      bareSendP50: bare.p50,
      bareSendP99: bare.p99,
    };
  } finally {
    await Promise.all(children.map((child) => child.stop()));
    await fake.close();
    await dropPrefix(prefix);
  }
}
