import { Worker } from 'bullmq';
import type { DialogRunJob } from '../jobs/dialog-run-job.js';
import { QUEUES } from '../jobs/queue-names.js';
import { runDialog, type RunDialogDeps } from '../jobs/run-dialog.js';
import type { Logger } from '../config/log.js';
import { pauseOnOutage } from './pause-on-outage.js';
import { consumerLockOptions } from './worker-options.js';

export interface DialogRunsConsumerOptions extends RunDialogDeps {
  prefix: string;
  log: Logger;
  concurrency: number;
  /** How long to stop taking jobs while Postgres is unreachable. */
  databaseRetryMs?: number;
  /** QUEUE_LOCK_MS: a dead worker's jobs are taken over within about 1.5 × this. */
  lockMs: number;
}

/** Consumes `step-runs`: wires {@link runDialog} to BullMQ; while Postgres is down, pauses without spending attempts. */
export function startDialogRunsConsumer(options: DialogRunsConsumerOptions): Worker<DialogRunJob> {
  const { log } = options;
  const worker: Worker<DialogRunJob> = new Worker<DialogRunJob>(
    QUEUES.stepRuns,
    async (job) => {
      try {
        await runDialog(job.data, options);
      } catch (error) {
        await pauseOnOutage(worker, error, {
          log,
          message: 'postgres unreachable; dialog runs wait',
          retryMs: options.databaseRetryMs ?? 2_000,
        });
      }
    },
    {
      connection: options.redis,
      prefix: options.prefix,
      concurrency: options.concurrency,
      ...consumerLockOptions(options.lockMs),
    },
  );
  worker.on('failed', (job, error) =>
    log.warn({ err: error, jobId: job?.id, attempts: job?.attemptsMade }, 'dialog run failed'),
  );
  worker.on('error', (error) => log.warn({ err: error }, 'step-runs worker error'));
  return worker;
}
