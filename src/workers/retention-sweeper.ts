import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Knex } from 'knex';
import type { Logger } from '../config/log.js';
import {
  deleteRetentionBatch,
  RETENTION_TARGETS,
  retentionDays,
  type RetentionDays,
  type RetentionTarget,
} from '../db/retention.js';
import { JOB_RETENTION } from '../jobs/job-retention.js';
import { scripts } from '../redis/scripts.js';

export interface RetentionSweeperOptions {
  db: Knex;
  redis: Redis;
  prefix: string;
  log: Logger;
  days: RetentionDays;
  /** Queues whose finished jobs are also cleaned by the ages of JOB_RETENTION. */
  queues?: readonly Queue[];
  /** Between runs. Default 1 h. */
  intervalMs?: number;
  /** The first run, after start. Default 1 min. */
  firstRunDelayMs?: number;
  /** Rows deleted by one statement (one transaction). Default 1 000. */
  batchSize?: number;
  /** Between two batches, so that other work gets the table and the disk. Default 100 ms. */
  pauseMs?: number;
  /** Batches of one table in one run; a run that stops there runs again after `catchUpMs`. Default 50. */
  maxBatchesPerRun?: number;
  /** Default 1 min. */
  catchUpMs?: number;
}

export interface RetentionRun {
  /** Rows deleted by target (deliveries also took their attempts with them). */
  deleted: Record<RetentionTarget, number>;
  /** Finished jobs removed by queue. */
  jobs: Record<string, number>;
  /** A table had more old rows than one run deletes. */
  capped: boolean;
}

export interface RetentionSweeper {
  /** One run now (or the one this process has in progress); null when another process holds the run. */
  runOnce(): Promise<RetentionRun | null>;
  /** Stops scheduling; resolves once a run in progress has stopped after its current batch. */
  stop(): Promise<void>;
}

const LOCK_TTL_MS = 60_000;

/** Another process may have taken the run over: this one stops. */
class LockLost extends Error {}

/**
 * Deletes what flowpost no longer needs (src/db/retention.ts says what and why), in small batches,
 * and the finished jobs BullMQ trims only when another job finishes. One process at a time runs
 * it (a Redis lock, extended after every batch); should two ever overlap (the lock expired during
 * a stall), each statement is safe to run concurrently and they only share the work.
 */
export function startRetentionSweeper(options: RetentionSweeperOptions): RetentionSweeper {
  const intervalMs = options.intervalMs ?? 3_600_000;
  const batchSize = options.batchSize ?? 1_000;
  const pauseMs = options.pauseMs ?? 100;
  const maxBatches = options.maxBatchesPerRun ?? 50;
  const catchUpMs = options.catchUpMs ?? 60_000;
  const lockKey = `${options.prefix}:retention:lock`;
  let timer: NodeJS.Timeout | null = null;
  let stopped = false;
  let running: Promise<RetentionRun | null> | null = null;

  /** Deletes a target's old rows batch by batch; returns how many, and whether it stopped at the cap. */
  const sweepTarget = async (target: RetentionTarget, owner: string): Promise<{ deleted: number; capped: boolean }> => {
    const days = retentionDays(options.days, target);
    let deleted = 0;
    for (let batch = 1; ; batch++) {
      const count = await deleteRetentionBatch(options.db, target, days, batchSize);
      deleted += count;
      if (count < batchSize) return { deleted, capped: false };
      if (batch >= maxBatches || stopped) return { deleted, capped: true };
      const held = await scripts.extendLock.run(options.redis, [lockKey], [owner, String(LOCK_TTL_MS)]);
      if (held !== 1) throw new LockLost('the retention lock was lost');
      await sleep(pauseMs);
    }
  };

  const cleanQueues = async (jobs: Record<string, number>): Promise<void> => {
    for (const queue of options.queues ?? []) {
      const retention = JOB_RETENTION[queue.name as keyof typeof JOB_RETENTION];
      if (!retention) continue;
      let removed = 0;
      if (retention.removeOnComplete !== true)
        removed += (await queue.clean(retention.removeOnComplete.age * 1000, 1_000, 'completed')).length;
      if (retention.removeOnFail !== true)
        removed += (await queue.clean(retention.removeOnFail.age * 1000, 1_000, 'failed')).length;
      jobs[queue.name] = removed;
    }
  };

  const run = async (): Promise<RetentionRun | null> => {
    const owner = randomUUID();
    const taken = await options.redis.set(lockKey, owner, 'PX', LOCK_TTL_MS, 'NX');
    if (taken !== 'OK') return null;
    const started = Date.now();
    const result: RetentionRun = {
      deleted: Object.fromEntries(RETENTION_TARGETS.map((target) => [target, 0])) as Record<RetentionTarget, number>,
      jobs: {},
      capped: false,
    };
    try {
      for (const target of RETENTION_TARGETS) {
        if (stopped) break;
        try {
          const swept = await sweepTarget(target, owner);
          result.deleted[target] = swept.deleted;
          result.capped ||= swept.capped;
        } catch (error) {
          options.log.warn({ err: error, target }, 'retention stopped on a table');
          if (error instanceof LockLost) break;
        }
      }
      if (!stopped)
        await cleanQueues(result.jobs).catch((error: unknown) =>
          options.log.warn({ err: error }, 'finished jobs could not be cleaned'),
        );
    } finally {
      await scripts.releaseLock.run(options.redis, [lockKey], [owner]).catch(() => undefined);
    }
    const anything = Object.values(result.deleted).some((n) => n > 0) || Object.values(result.jobs).some((n) => n > 0);
    options.log[anything ? 'info' : 'debug'](
      { deleted: result.deleted, jobs: result.jobs, capped: result.capped, ms: Date.now() - started },
      'retention run',
    );
    return result;
  };

  const runOnce = (): Promise<RetentionRun | null> => {
    running ??= run()
      .catch((error: unknown) => {
        options.log.warn({ err: error }, 'retention run failed');
        return null;
      })
      .finally(() => {
        running = null;
      });
    return running;
  };

  const schedule = (delayMs: number) => {
    if (stopped) return;
    timer = setTimeout(() => {
      void runOnce().then((result) => schedule(result?.capped ? catchUpMs : intervalMs));
    }, delayMs);
    timer.unref();
  };
  schedule(options.firstRunDelayMs ?? 60_000);

  return {
    runOnce,
    stop: async () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}
