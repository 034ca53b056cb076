import type { KeepJobs } from 'bullmq';
import { QUEUES } from './queue-names.js';

type QueueName = (typeof QUEUES)[keyof typeof QUEUES];

/** How long a queue's finished jobs stay in Redis (BullMQ `removeOnComplete` / `removeOnFail`). */
export interface JobRetention {
  removeOnComplete: true | (KeepJobs & { age: number });
  removeOnFail: true | (KeepJobs & { age: number });
}

const HOUR = 3_600;
const DAY = 24 * HOUR;

/**
 * The one place that says how long each queue keeps its finished jobs. Postgres holds everything
 * a job stands for (inputs, delays, deliveries), so finished jobs are kept only to be looked at;
 * every set also has a count, so a flood of failures cannot fill Redis (it runs `noeviction`).
 * BullMQ trims a set only when another job finishes into it; the retention sweeper also cleans
 * by these ages (see src/workers/retention-sweeper.ts).
 */
export const JOB_RETENTION = {
  [QUEUES.dialogUpdates]: {
    // An hour, at most 1 000: enough to look at recent traffic in the dashboard; the input itself is journaled.
    removeOnComplete: { age: HOUR, count: 1_000 },
    // An update that failed all its tries was not applied: a week to find out why and retry it
    // from the dashboard. The count bounds a week of failures at full speed (a bug, say).
    removeOnFail: { age: 7 * DAY, count: 100_000 },
  },
  [QUEUES.stepRuns]: {
    // As above. Drain and alarm ids repeat while their job is kept (a repeat is one job), and
    // nothing depends on that beyond the hour: a second drain is harmless, a second alarm is one
    // input (journaled once by its key).
    removeOnComplete: { age: HOUR, count: 1_000 },
    // A failed drain loses nothing (the inputs wait in Postgres, the sweeper wakes the dialog):
    // kept a week for its error, fewer of them.
    removeOnFail: { age: 7 * DAY, count: 10_000 },
  },
  [QUEUES.outboundWebhooks]: {
    // At once: the job id names the delivery's chain, and a kept job would turn away the sweeper
    // queueing a chain again whose delivery is still pending. Attempts are recorded in Postgres.
    removeOnComplete: true,
    // A chain fails only after ~80 minutes of unexpected errors (not failed attempts, which are
    // recorded and retried). Kept a day for its error; while kept it holds the chain's id, so the
    // sweeper queues the still-pending delivery again once it is gone.
    removeOnFail: { age: DAY, count: 10_000 },
  },
  [QUEUES.outboundBatches]: {
    // At once: a kept batch job would still count as the place its deliveries wait (see
    // DeliveryRecorder.waitsInBatch), and the sweeper would never queue them again.
    removeOnComplete: true,
    // A failed batch no longer holds its deliveries (the sweeper queues them again): a day for its error.
    removeOnFail: { age: DAY, count: 10_000 },
  },
  [QUEUES.broadcasts]: {
    // At once: the job id names the broadcast, and a kept job would turn away the sweeper (or a
    // resume) queueing the broadcast's run again. Progress is in Postgres.
    removeOnComplete: true,
    removeOnFail: true,
  },
} as const satisfies Record<QueueName, JobRetention>;
