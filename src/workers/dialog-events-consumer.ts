import { DelayedError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { isDatabaseUnavailable } from '../db/connection.js';
import type { DialogEventJob } from '../jobs/dialog-event-job.js';
import type { Logger } from '../log.js';
import { DialogInbox } from '../runner/dialog-inbox.js';
import type { DialogRunner } from '../runner/dialog-runner.js';

export interface DialogEventsConsumerOptions {
  queueName: string;
  connection: Redis;
  prefix: string;
  log: Logger;
  concurrency: number;
  runner: DialogRunner;
  /** How soon a job retries when another process is draining the same dialog. */
  busyRetryMs?: number;
  /** How long to stop taking jobs while Postgres is unreachable. */
  databaseRetryMs?: number;
}

/**
 * Consumes a queue of dialog events (`telegram-updates`, `step-runs`): puts the job's event, if it
 * carries one, into the dialog's inbox, then drains the inbox with the script runner.
 */
export function startDialogEventsConsumer(options: DialogEventsConsumerOptions): Worker<DialogEventJob> {
  const { log } = options;
  const inbox = new DialogInbox(options.connection, options.prefix);
  const worker: Worker<DialogEventJob> = new Worker<DialogEventJob>(
    options.queueName,
    async (job, token) => {
      const ref = { botId: job.data.botId, chatId: job.data.chatId };
      if (job.data.event) {
        await inbox.push(ref, job.data.event);
        await job.updateData(ref); // pushed once, whatever happens next
      }
      let drained: boolean;
      try {
        drained = await inbox.drain(ref, (event) => options.runner.handle(ref, event));
      } catch (error) {
        if (!isDatabaseUnavailable(error)) throw error;
        // The event waits in the inbox; pause this queue instead of spending the job's attempts.
        log.warn({ err: error }, `postgres unreachable; ${options.queueName} wait`);
        await worker.rateLimit(options.databaseRetryMs ?? 2_000);
        throw Worker.RateLimitError();
      }
      if (!drained) {
        // Another process holds this dialog; try again shortly (it may have died holding it).
        await job.moveToDelayed(Date.now() + (options.busyRetryMs ?? 250), token);
        throw new DelayedError();
      }
    },
    { connection: options.connection, prefix: options.prefix, concurrency: options.concurrency, maxStalledCount: 10 },
  );
  worker.on('failed', (job, error) => log.error({ err: error, jobId: job?.id }, 'dialog event failed'));
  worker.on('error', (error) => log.warn({ err: error }, `${options.queueName} worker error`));
  return worker;
}
