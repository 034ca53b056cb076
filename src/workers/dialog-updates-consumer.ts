import { Worker } from 'bullmq';
import type { Knex } from 'knex';
import type { Redis } from 'ioredis';
import { waitOnClick } from '../db/clicks.js';
import { recordConversion } from '../db/conversions.js';
import { isDatabaseUnavailable } from '../db/connection.js';
import { dialogKey } from '../db/dialog-rows.js';
import { applyDialogUpdates, type AppliedDialog, type DialogUpdateInput } from '../db/dialog-writer.js';
import { applyDialogUpdate } from '../jobs/apply-dialog-update.js';
import type { DialogUpdateJob } from '../jobs/dialog-update-job.js';
import { QUEUES } from '../jobs/queue-names.js';
import type { Logger } from '../config/log.js';
import type { SequenceFloor } from '../redis/sequence-floor.js';
import { GroupCommit } from '../db/group-commit.js';
import { pauseOnOutage } from './pause-on-outage.js';
import { consumerLockOptions } from './worker-options.js';

export interface DialogUpdatesConsumerOptions {
  db: Knex;
  connection: Redis;
  prefix: string;
  log: Logger;
  concurrency: number;
  /** The order counter's floor (raised by every applied id). */
  sequenceFloor: SequenceFloor;
  /** Queues an input again (one drawn too low after Redis lost its counter). */
  requeue: (job: DialogUpdateJob) => Promise<unknown>;
  /** Called after an update is durably applied (the dialog's inputs are drained from here). */
  onApplied?: (applied: AppliedDialog, seq: number) => Promise<void>;
  /** How long to stop taking jobs while Postgres is unreachable. */
  databaseRetryMs?: number;
  /** QUEUE_LOCK_MS: a dead worker's jobs are taken over within about 1.5 × this. */
  lockMs: number;
}

type Outcome = { applied: AppliedDialog | undefined } | { error: unknown };

/**
 * Consumes `dialog-updates`: jobs handled concurrently are written to Postgres together (one
 * transaction per batch). While Postgres is unreachable the worker pauses and puts the jobs back
 * (without spending their attempts), so accepted updates wait and are applied when it returns.
 */
export function startDialogUpdatesConsumer(options: DialogUpdatesConsumerOptions): Worker<DialogUpdateJob> {
  const { db, log } = options;
  const retryMs = options.databaseRetryMs ?? 2_000;

  const sequenceFloor = options.sequenceFloor;

  const applyBatch = async (updates: DialogUpdateInput[]): Promise<Outcome[]> => {
    const applied = await applyDialogUpdates(db, updates);
    for (const update of updates) sequenceFloor.observe(update.seq);
    const byDialog = new Map(applied.map((a) => [dialogKey(a.botId, a.chatId), a]));
    return updates.map((u) => ({ applied: byDialog.get(dialogKey(u.botId, u.chatId)) }));
  };

  const batcher = new GroupCommit<DialogUpdateInput, Outcome>(async (updates) => {
    try {
      return await applyBatch(updates);
    } catch (error) {
      if (isDatabaseUnavailable(error) || updates.length === 1) throw error;
      // One update Postgres refuses must not hold back the rest of its batch: apply each alone.
      log.warn({ err: error, batch: updates.length }, 'batch refused; applying its updates one by one');
      return Promise.all(
        updates.map((update) =>
          applyBatch([update]).then(
            ([outcome]) => outcome!,
            (failure: unknown) => ({ error: failure }),
          ),
        ),
      );
    }
  }, options.concurrency);

  const worker: Worker<DialogUpdateJob> = new Worker<DialogUpdateJob>(
    QUEUES.dialogUpdates,
    async (job) => {
      try {
        await applyDialogUpdate(job, {
          redis: options.connection,
          floor: sequenceFloor,
          // The web request that queued it, on this job's lines.
          log: job.data.requestId ? log.child({ requestId: job.data.requestId }) : log,
          requeue: options.requeue,
          recordConversion: (target, conversion) => recordConversion(db, target, conversion),
          resolveClick: async (data, seq) => {
            const found = await waitOnClick(db, data.botId, data.clickid, { seq, job: data });
            if (found) sequenceFloor.observe(seq);
            return found ? found.chatId : undefined;
          },
          ...(options.onApplied ? { onApplied: options.onApplied } : {}),
          apply: async (update) => {
            const outcome = await batcher.submit(update);
            if ('error' in outcome) throw outcome.error;
            return outcome.applied;
          },
        });
      } catch (error) {
        await pauseOnOutage(worker, error, { log, message: 'postgres unreachable; dialog updates wait', retryMs });
      }
    },
    {
      connection: options.connection,
      prefix: options.prefix,
      concurrency: options.concurrency,
      ...consumerLockOptions(options.lockMs),
    },
  );
  worker.on('failed', (job, error) =>
    log.error({ err: error, jobId: job?.id, requestId: job?.data.requestId }, 'dialog update failed'),
  );
  worker.on('error', (error) => log.warn({ err: error }, 'dialog-updates worker error'));
  return worker;
}
