import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue } from 'bullmq';
import { loadConfig } from '../src/config/env.js';
import { insertBot } from '../src/db/bots.js';
import { DIALOG_UPDATE_JOB, DIALOG_UPDATE_JOB_OPTIONS, type DialogUpdateJob } from '../src/jobs/dialog-update-job.js';
import { QUEUES } from '../src/jobs/queue-names.js';
import { createWorkerConnection } from '../src/redis/connection.js';
import type { BenchDatabase } from './lib/database.js';
import { runScript } from './lib/processes.js';
import { dropPrefix, REDIS_URL } from './lib/redis.js';

const UPDATES = Number(process.env.BENCH_APPLY_UPDATES ?? 50_000);
const DIALOGS = Number(process.env.BENCH_APPLY_DIALOGS ?? 5_000);

export interface DrainFigures {
  updates: number;
  seconds: number;
  perSec: number;
}

async function fillBacklog(prefix: string, botId: string): Promise<void> {
  const connection = createWorkerConnection(REDIS_URL);
  const queue = new Queue<DialogUpdateJob>(QUEUES.dialogUpdates, { connection, prefix });
  for (let start = 0; start < UPDATES; start += 1000) {
    const jobs = [];
    for (let i = start; i < Math.min(UPDATES, start + 1000); i++) {
      jobs.push({
        name: DIALOG_UPDATE_JOB,
        data: {
          botId,
          chatId: 200_000 + (i % DIALOGS),
          patch: { fields: { userBalance: i, refID: `ref${i}` }, tracker: { clickid: `c${i}` }, addTags: ['lead'] },
        },
        opts: DIALOG_UPDATE_JOB_OPTIONS,
      });
    }
    await queue.addBulk(jobs);
  }
  await queue.close();
  connection.disconnect();
}

/** Waits until the backlog is drained; the clock starts when the first job leaves the wait list. */
async function timeDrain(prefix: string): Promise<DrainFigures> {
  const connection = createWorkerConnection(REDIS_URL);
  const queue = new Queue(QUEUES.dialogUpdates, { connection, prefix });
  let started = 0;
  for (;;) {
    const counts = await queue.getJobCounts('wait', 'active', 'delayed', 'prioritized');
    const left = (counts.wait ?? 0) + (counts.active ?? 0) + (counts.delayed ?? 0) + (counts.prioritized ?? 0);
    if (!started && left < UPDATES) started = performance.now();
    if (started && left === 0) break;
    await sleep(10);
  }
  const seconds = (performance.now() - started) / 1000;
  await queue.close();
  connection.disconnect();
  return { updates: UPDATES, seconds, perSec: UPDATES / seconds };
}

/** (b) apply: a backlog drained by one flowpost worker process beside a no-op BullMQ worker. */
export async function benchApply(
  database: BenchDatabase,
): Promise<{ noop: DrainFigures; apply: DrainFigures; concurrency: number }> {
  const concurrency = loadConfig({ ...process.env, LOG_LEVEL: 'warn' }).dialogUpdatesConcurrency;
  const bot = await insertBot(database.db, { name: 'bench', timezone: 'UTC', telegram: null });

  const noopPrefix = `fpb_${randomBytes(4).toString('hex')}`;
  await fillBacklog(noopPrefix, bot.id);
  const noopWorker = runScript('bench/servers/noop-worker.ts', {
    REDIS_URL,
    QUEUE_PREFIX: noopPrefix,
    WORKER_CONCURRENCY: String(concurrency),
  });
  let noop: DrainFigures;
  try {
    noop = await timeDrain(noopPrefix);
  } finally {
    await noopWorker.stop();
    await dropPrefix(noopPrefix);
  }

  const prefix = `fpb_${randomBytes(4).toString('hex')}`;
  await fillBacklog(prefix, bot.id);
  const worker = runScript('src/cli/worker.ts', { DATABASE_URL: database.url, REDIS_URL, QUEUE_PREFIX: prefix });
  let apply: DrainFigures;
  try {
    apply = await timeDrain(prefix);
  } finally {
    await worker.stop();
    await dropPrefix(prefix);
  }
  const dialogs = await database.db('dialogs').where({ bot_id: bot.id }).count<{ count: string }[]>('* as count');
  const last = await database
    .db('dialogs')
    .where({ bot_id: bot.id, chat_id: 200_000 + ((UPDATES - 1) % DIALOGS) })
    .first<{ fields: Record<string, unknown> } | undefined>('fields');
  if (Number(dialogs[0]!.count) !== DIALOGS || last?.fields.userBalance !== UPDATES - 1) {
    throw new Error(
      `apply bench: expected ${DIALOGS} dialogs ending at their last values; found ${dialogs[0]!.count}, ${JSON.stringify(last)}`,
    );
  }
  return { noop, apply, concurrency };
}
