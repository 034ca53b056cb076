import { randomBytes, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue } from 'bullmq';
import { Agent, request } from 'undici';
import { insertBot } from '../src/db/bots.js';
import type { OutboundBatchJob, OutboundDeliveryJob } from '../src/jobs/outbound-delivery-job.js';
import { QUEUES } from '../src/jobs/queue-names.js';
import { DeliveryRecorder } from '../src/outbound/delivery-recorder.js';
import { deliveryJob } from '../src/outbound/enqueue.js';
import { createWorkerConnection } from '../src/redis/connection.js';
import type { BenchDatabase } from './lib/database.js';
import { median, percentile } from './lib/stats.js';
import { freePort, runScript, waitForHttp, type Child } from './lib/processes.js';
import { dropPrefix, REDIS_URL } from './lib/redis.js';

const DELIVERIES = 30_000;
const SINGLE_DELIVERIES = 10_000;
// Rounds of (e), each a bare loop then the deliveries; the first warms both up and is not counted.
const ROUNDS = 5;
const WARMUP_ROUNDS = 1;
const CONCURRENCY = 64;
const FAST_RATE = 50;
const FAST_SECONDS = 30;
// The first deliveries of a phase (new connections, cold code) are not counted.
const FAST_WARMUP = 10;
const SLOW_BACKLOG = 1_000;

export interface OutboundFigures {
  bareRequestsPerSec: number;
  deliveriesPerSec: number;
  /** Deliveries/s over bare req/s, round by round (each pair measured back to back). */
  roundRatios: number[];
  /** The median of `roundRatios`. */
  deliveryRatio: number;
  singleDeliveriesPerSec: number;
  fastP50Alone: number;
  fastP99Alone: number;
  fastP50WithSlow: number;
  fastP99WithSlow: number;
}

/**
 * Records deliveries the way a burst of send_webhook steps does: rows written together and queued in
 * shared batch jobs (a lone delivery gets a job of its own).
 */
async function recordMany(recorder: DeliveryRecorder, botId: string, urls: string[]): Promise<Map<string, number>> {
  const created = new Map<string, number>();
  for (let start = 0; start < urls.length; start += 1000) {
    const deliveries = urls.slice(start, start + 1000).map((url) => {
      const id = randomUUID();
      return {
        id,
        chatId: 1,
        stepId: null,
        request: { botId, messageId: `msg_${id.replace(/-/g, '')}`, method: 'GET', url, headers: {}, body: null },
      };
    });
    await recorder.recordAll(deliveries);
    // Sub-millisecond wall-clock time, as the sink notes arrivals (a 5 ms p99 is not rounded to whole ms).
    const now = performance.timeOrigin + performance.now();
    for (const delivery of deliveries) created.set(new URL(delivery.request.url).pathname, now);
  }
  return created;
}

/** Records deliveries one at a time, each with a job of its own (as steps far apart do). */
async function recordEach(
  database: BenchDatabase,
  queue: Queue<OutboundDeliveryJob>,
  botId: string,
  urls: string[],
): Promise<void> {
  for (let start = 0; start < urls.length; start += 1000) {
    const rows = urls.slice(start, start + 1000).map((url) => {
      const id = randomUUID();
      return {
        id,
        bot_id: botId,
        chat_id: 1,
        message_id: `msg_${id.replace(/-/g, '')}`,
        method: 'GET',
        url,
        headers: '{}',
      };
    });
    await database.db('deliveries').insert(rows);
    await queue.addBulk(
      rows.map((row) =>
        deliveryJob({
          id: row.id,
          chain: 1,
          request: { botId, messageId: row.message_id, method: row.method, url: row.url, headers: {}, body: null },
        }),
      ),
    );
  }
}

async function pendingCount(database: BenchDatabase, botId: string): Promise<number> {
  const [row] = await database
    .db('deliveries')
    .where({ bot_id: botId, state: 'pending' })
    .count<{ count: string }[]>('* as count');
  return Number(row!.count);
}

async function arrivals(sinkUrl: string): Promise<Map<string, number>> {
  const res = await fetch(`${sinkUrl}/_arrivals`);
  return new Map((await res.json()) as Array<[string, number]>);
}

/** Fast-host deliveries at a steady rate; their latency from record to arrival at the sink. */
async function fastLatencies(
  recorder: DeliveryRecorder,
  botId: string,
  sinkUrl: string,
  tag: string,
): Promise<number[]> {
  await arrivals(sinkUrl);
  const created = new Map<string, number>();
  const total = FAST_RATE * FAST_SECONDS;
  const started = performance.now();
  for (let i = 0; i < total; i++) {
    const wait = started + (i * 1000) / FAST_RATE - performance.now();
    if (wait > 0) await sleep(wait);
    for (const [path, at] of await recordMany(recorder, botId, [`${sinkUrl}/${tag}-${i}`])) created.set(path, at);
  }
  const deadline = Date.now() + 60_000;
  const seen = new Map<string, number>();
  while (seen.size < total && Date.now() < deadline) {
    await sleep(200);
    for (const [path, at] of await arrivals(sinkUrl)) seen.set(path, at);
  }
  return [...created]
    .slice(FAST_WARMUP)
    .filter(([path]) => seen.has(path))
    .map(([path, at]) => seen.get(path)! - at)
    .sort((a, b) => a - b);
}

/**
 * (e) deliveries/s to a fast local sink through one worker process (each delivery recorded with its
 *     attempt), beside a bare undici request loop to the same sink: deliveries recorded together
 *     (batch jobs), and deliveries each with a job of its own.
 * (f) a fast host's delivery latency at 50/s for 30 s, alone and while a slow host (5 s answers) has 1,000
 *     deliveries queued.
 */
export async function benchOutbound(database: BenchDatabase): Promise<OutboundFigures> {
  const prefix = `fpb_${randomBytes(4).toString('hex')}`;
  const [fastPort, slowPort] = [await freePort(), await freePort()];
  const children: Child[] = [
    runScript('bench/servers/sink.ts', { PORT: String(fastPort) }),
    runScript('bench/servers/sink.ts', { PORT: String(slowPort), DELAY_MS: '5000' }),
  ];
  const fastUrl = `http://127.0.0.1:${fastPort}`;
  const slowUrl = `http://127.0.0.1:${slowPort}`;
  const connection = createWorkerConnection(REDIS_URL);
  const chains = new Queue<OutboundDeliveryJob>(QUEUES.outboundWebhooks, { connection, prefix });
  const batches = new Queue<OutboundBatchJob>(QUEUES.outboundBatches, { connection, prefix });
  const recorder = new DeliveryRecorder(database.db, { chains, batches });
  const workerEnv = {
    DATABASE_URL: database.url,
    REDIS_URL,
    QUEUE_PREFIX: prefix,
    OUTBOUND_ALLOW_CIDRS: '127.0.0.0/8',
    WORKER_CONCURRENCY: String(CONCURRENCY),
    PUBLIC_URL: 'https://bench.flowpost.test',
  };
  try {
    await waitForHttp(`${fastUrl}/_arrivals`);
    await waitForHttp(`${slowUrl}/_arrivals`);

    const bareLoop = async (round: number): Promise<number> => {
      const agent = new Agent({ connections: CONCURRENCY });
      let next = 0;
      const started = performance.now();
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          while (next < DELIVERIES) {
            const i = next++;
            const res = await request(`${fastUrl}/bare-${round}-${i}`, { dispatcher: agent });
            await res.body.text();
          }
        }),
      );
      const perSec = DELIVERIES / ((performance.now() - started) / 1000);
      await agent.close();
      return perSec;
    };

    const bot = await insertBot(database.db, { name: 'bench', timezone: 'UTC', telegram: null });
    // Timed from the first delivery taken to the last recorded (polling Redis, not the database under test).
    const queued = async () => {
      const counts = await Promise.all(
        [chains, batches].map((queue) => queue.getJobCounts('wait', 'active', 'delayed')),
      );
      return counts.reduce((sum, c) => sum + (c.wait ?? 0) + (c.active ?? 0) + (c.delayed ?? 0), 0);
    };
    // One worker process for every round (warm, as the bare loop's process is); the queues are
    // paused while a round's deliveries are recorded, and timed from resume to the last recorded.
    const worker = runScript('src/cli/worker.ts', { ...workerEnv, OUTBOUND_MAX_PER_HOST: String(CONCURRENCY) });
    children.push(worker);
    while ((await batches.getWorkers()).length === 0 || (await chains.getWorkers()).length === 0) await sleep(100);
    const drain = async (count: number, record: () => Promise<unknown>): Promise<number> => {
      await Promise.all([chains.pause(), batches.pause()]);
      await record();
      const started = performance.now();
      await Promise.all([chains.resume(), batches.resume()]);
      while ((await queued()) > 0) await sleep(20);
      const perSec = count / ((performance.now() - started) / 1000);
      if ((await pendingCount(database, bot.id)) > 0) throw new Error('outbound bench: deliveries left pending');
      return perSec;
    };
    // Alternate the two, round after round, so that both see the same machine (whose speed drifts
    // over a run): each round's ratio compares a pair measured back to back; the median is kept.
    const bareRounds: number[] = [];
    const deliveryRounds: number[] = [];
    for (let round = 0; round < WARMUP_ROUNDS + ROUNDS; round++) {
      const bare = await bareLoop(round);
      const urls = Array.from({ length: DELIVERIES }, (_, i) => `${fastUrl}/d-${round}-${i}`);
      const delivered = await drain(DELIVERIES, () => recordMany(recorder, bot.id, urls));
      if (round < WARMUP_ROUNDS) continue;
      bareRounds.push(bare);
      deliveryRounds.push(delivered);
    }
    const bareRequestsPerSec = median(bareRounds);
    const deliveriesPerSec = median(deliveryRounds);
    const roundRatios = deliveryRounds.map((delivered, round) => delivered / bareRounds[round]!);
    const singles = Array.from({ length: SINGLE_DELIVERIES }, (_, i) => `${fastUrl}/s-${i}`);
    const singleDeliveriesPerSec = await drain(SINGLE_DELIVERIES, () => recordEach(database, chains, bot.id, singles));
    await worker.stop();

    // (f) with the default per-host share, so that a slow host cannot take the whole worker.
    children.push(runScript('src/cli/worker.ts', workerEnv));
    await sleep(2_000);
    const alone = await fastLatencies(recorder, bot.id, fastUrl, 'alone');
    await recordMany(
      recorder,
      bot.id,
      Array.from({ length: SLOW_BACKLOG }, (_, i) => `${slowUrl}/slow-${i}`),
    );
    await sleep(1_000);
    const withSlow = await fastLatencies(recorder, bot.id, fastUrl, 'beside-slow');
    return {
      bareRequestsPerSec,
      deliveriesPerSec,
      roundRatios,
      deliveryRatio: median(roundRatios),
      singleDeliveriesPerSec,
      fastP50Alone: percentile(alone, 50),
      fastP99Alone: percentile(alone, 99),
      fastP50WithSlow: percentile(withSlow, 50),
      fastP99WithSlow: percentile(withSlow, 99),
    };
  } finally {
    await Promise.all(children.map((child) => child.stop()));
    await Promise.all([chains.close(), batches.close()]);
    connection.disconnect();
    await dropPrefix(prefix);
  }
}
