import { Worker } from 'bullmq';
import type { Knex } from 'knex';
import type { Redis } from 'ioredis';
import { isDatabaseUnavailable } from '../db/connection.js';
import { applyDialogUpdates, splitPostback, type AppliedDialog, type DialogUpdateInput } from '../db/dialog-writer.js';
import { sequenceOf, type DialogUpdateJob } from '../jobs/dialog-update-job.js';
import { QUEUES } from '../jobs/queue-names.js';
import type { Logger } from '../log.js';
import type { SequenceFloor } from '../queue/sequence-floor.js';
import { GroupCommit } from '../db/group-commit.js';
import { telegramDedupeKey } from '../telegram/token-key.js';

export interface DialogUpdatesConsumerOptions {
  db: Knex;
  connection: Redis;
  prefix: string;
  log: Logger;
  concurrency: number;
  /** The order counter's floor (raised by every applied id). */
  sequenceFloor: SequenceFloor;
  /** Queues an input again (one drawn too low after Redis lost its counter). */
  requeue(job: DialogUpdateJob): Promise<unknown>;
  /** Called after an update is durably applied (the dialog's inputs are drained from here). */
  onApplied?(applied: AppliedDialog, seq: number): Promise<void>;
  /** How long to stop taking jobs while Postgres is unreachable. */
  databaseRetryMs?: number;
}

type Outcome = { applied: AppliedDialog | undefined } | { error: unknown };

function dialogKey(botId: string, chatId: number): string {
  return `${botId}/${chatId}`;
}

/** An accepted job as the writer takes it: a postback's values to merge, and what to journal. */
export function toUpdateInput(data: DialogUpdateJob, seq: number): DialogUpdateInput {
  const { botId, chatId } = data;
  if (data.telegram) {
    const { update, tokenKey } = data.telegram;
    const updateId = (update as { update_id?: unknown }).update_id;
    return {
      botId,
      chatId,
      seq,
      input: { kind: 'telegram', update, tokenKey },
      dedupeKey: typeof updateId === 'number' ? telegramDedupeKey(tokenKey, updateId) : null,
    };
  }
  const { values, move } = splitPostback(data.patch);
  return { botId, chatId, seq, patch: values, ...(move ? { input: move } : {}) };
}

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
        updates.map((update) => applyBatch([update]).then(([outcome]) => outcome!, (failure: unknown) => ({ error: failure }))),
      );
    }
  }, options.concurrency);

  const worker: Worker<DialogUpdateJob> = new Worker<DialogUpdateJob>(
    QUEUES.dialogUpdates,
    async (job) => {
      const { botId, chatId } = job.data;
      const seq = sequenceOf(job.id);
      if (await sequenceFloor.drawnTooLow(options.connection, seq)) {
        log.warn({ botId, chatId, jobId: job.id }, 'update drawn below the restored order counter; queued again above it');
        await options.requeue(job.data);
        return;
      }
      let applied: AppliedDialog | undefined;
      try {
        const outcome = await batcher.submit(toUpdateInput(job.data, seq));
        if ('error' in outcome) throw outcome.error;
        applied = outcome.applied;
      } catch (error) {
        if (!isDatabaseUnavailable(error)) throw error;
        log.warn({ err: error }, 'postgres unreachable; dialog updates wait');
        await worker.rateLimit(retryMs);
        throw Worker.RateLimitError();
      }
      if (!applied) {
        log.warn({ botId, chatId, jobId: job.id }, 'dialog update dropped: the bot no longer exists');
        return;
      }
      await options.onApplied?.(applied, seq);
    },
    {
      connection: options.connection,
      prefix: options.prefix,
      concurrency: options.concurrency,
      maxStalledCount: 10,
    },
  );
  worker.on('failed', (job, error) => log.error({ err: error, jobId: job?.id }, 'dialog update failed'));
  worker.on('error', (error) => log.warn({ err: error }, 'dialog-updates worker error'));
  return worker;
}
