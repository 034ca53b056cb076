import { Worker, type Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Knex } from 'knex';
import { runBroadcast, type BroadcastRunnerDeps } from '../broadcasts/broadcast-runner.js';
import type { Logger } from '../config/log.js';
import { dueBroadcasts } from '../db/broadcasts.js';
import { queueBroadcastRun, type BroadcastJob } from '../jobs/broadcast-job.js';
import { QUEUES } from '../jobs/queue-names.js';
import { startSweepLoop } from './sweep-loop.js';
import { consumerLockOptions } from './worker-options.js';

export interface BroadcastsOptions {
  db: Knex;
  connection: Redis;
  prefix: string;
  log: Logger;
  queue: Queue<BroadcastJob>;
  runner: BroadcastRunnerDeps;
  /** Broadcasts one process sends at once (each at its bot's spare rate). */
  concurrency?: number;
  lockMs: number;
  /** How often Postgres is asked for broadcasts that should run but have no job (Redis lost it, a worker stopped). */
  sweepIntervalMs: number;
}

export interface Broadcasts {
  worker: Worker<BroadcastJob>;
  sweepOnce(): Promise<void>;
  /**
   * Stops the sweeper and tells running broadcasts to stop: each run ends once the sends it has
   * under way are done and written; recipients it has not claimed stay pending, and the broadcast
   * `running`, for the sweeper to queue its run again.
   */
  stop(): void;
}

/**
 * Consumes `broadcasts`: each job runs one broadcast until it is done, paused or cancelled (see
 * runBroadcast). Postgres holds every broadcast and recipient, so a sweeper queues again, every
 * `sweepIntervalMs`, each broadcast that is running or due to start: a run lost with a worker or
 * with Redis goes on from where it stood.
 */
export function startBroadcasts(options: BroadcastsOptions): Broadcasts {
  const { log } = options;
  let stopping = false;
  const worker = new Worker<BroadcastJob>(
    QUEUES.broadcasts,
    async (job) => {
      const end = await runBroadcast(options.runner, job.data.broadcastId, () => stopping);
      log.info({ broadcastId: job.data.broadcastId, end }, 'broadcast run ended');
      return end;
    },
    {
      connection: options.connection,
      prefix: options.prefix,
      // Runs wait on Telegram's pace, not on CPU: enough of them that long broadcasts of some bots
      // do not hold up the others'.
      concurrency: options.concurrency ?? 32,
      ...consumerLockOptions(options.lockMs),
    },
  );
  worker.on('failed', (job, error) =>
    log.warn({ err: error, broadcastId: job?.data.broadcastId, attempts: job?.attemptsMade }, 'broadcast run failed'),
  );
  worker.on('error', (error) => log.warn({ err: error }, 'broadcasts worker error'));

  const sweeper = startSweepLoop({
    intervalMs: options.sweepIntervalMs,
    sweep: async () => {
      for (const due of await dueBroadcasts(options.db, 100)) await queueBroadcastRun(options.queue, due.id);
    },
    onError: (error) => log.warn({ err: error }, 'broadcast sweep failed'),
  });
  return {
    worker,
    sweepOnce: sweeper.sweepOnce,
    stop: () => {
      stopping = true;
      sweeper.stop();
    },
  };
}
