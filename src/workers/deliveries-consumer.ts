import { DelayedError, Worker, type Job, type Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Knex } from 'knex';
import type { Dispatcher } from 'undici';
import type { Logger } from '../config/log.js';
import { DeliveryStore } from '../db/deliveries.js';
import type { OutboundBatchJob, OutboundDeliveryJob } from '../jobs/outbound-delivery-job.js';
import { QUEUES } from '../jobs/queue-names.js';
import { CircuitView } from '../outbound/circuit-view.js';
import {
  processDeliveryBatchJob,
  processDeliveryChainJob,
  type DeliveryJobDeps,
  type DeliveryJobNext,
} from '../outbound/delivery-jobs.js';
import { HostPace, type HostCircuit, type LocalHostLimiter } from '../outbound/fairness/index.js';
import { SigningSecrets } from '../outbound/signing-secrets.js';
import { Slots } from '../outbound/slots.js';
import { consumerLockOptions } from './worker-options.js';

export interface DeliveryConsumerOptions {
  db: Knex;
  connection: Redis;
  prefix: string;
  log: Logger;
  concurrency: number;
  /** The guarded undici agent: private targets are refused at connect time. */
  agent: Dispatcher;
  retrySchedule: number[];
  totalTimeoutMs: number;
  userAgent: string;
  /** A host's share of this process's deliveries: a slow host holds at most so many at once. */
  local: LocalHostLimiter;
  circuit: HostCircuit;
  random?: () => number;
  /** Where a batched delivery that must wait goes: a chain job of its own. */
  chains: Queue<OutboundDeliveryJob>;
  /** Batch jobs taken at once (each holds up to a hundred deliveries; their requests in flight are still capped by `concurrency`). Default 8. */
  batchConcurrency?: number;
  /** QUEUE_LOCK_MS: a dead worker's jobs are taken over within about 1.5 × this. */
  lockMs: number;
}

/**
 * Starts the workers of `outbound-webhooks` and `outbound-webhook-batches` (processors in
 * src/outbound/delivery-jobs.ts). Each attempt is recorded; an exhausted or final failure ends
 * `failed`, kept for replay. A busy host's deliveries wait their turn, and a host whose circuit is
 * open is not attempted at all until it is probed again.
 */
export function startDeliveryConsumer(options: DeliveryConsumerOptions): Worker[] {
  const { log } = options;
  const deps: DeliveryJobDeps = {
    store: new DeliveryStore(options.db),
    secrets: new SigningSecrets(options.db),
    agent: options.agent,
    userAgent: options.userAgent,
    totalTimeoutMs: options.totalTimeoutMs,
    retrySchedule: options.retrySchedule,
    local: options.local,
    circuit: new CircuitView(options.circuit),
    pace: new HostPace(),
    batchSlots: new Slots(options.concurrency),
    random: options.random ?? Math.random,
    log,
    chains: options.chains,
  };

  const chainWorker = new Worker<OutboundDeliveryJob>(
    QUEUES.outboundWebhooks,
    async (job, token) => carryOut(job, token, await processDeliveryChainJob(job.data, deps)),
    workerOptions(options, options.concurrency),
  );
  const batchWorker = new Worker<OutboundBatchJob>(
    QUEUES.outboundBatches,
    async (job, token) => carryOut(job, token, await processDeliveryBatchJob(job, deps)),
    workerOptions(options, options.batchConcurrency ?? 8),
  );

  for (const worker of [chainWorker, batchWorker] as Worker[]) {
    worker.on('error', (error) => log.warn({ err: error }, 'outbound worker error'));
    worker.on('failed', (job, error) => log.error({ err: error, jobId: job?.id }, 'outbound delivery job failed'));
  }
  return [chainWorker, batchWorker];
}

/** A job to wait waits in Redis for its delay (BullMQ takes it up again then), with its new payload if any. */
async function carryOut<Data>(job: Job<Data>, token: string | undefined, next: DeliveryJobNext<Data>): Promise<void> {
  if (next.kind === 'finished') return;
  if (next.data !== undefined) await job.updateData(next.data);
  await job.moveToDelayed(Date.now() + Math.max(1, Math.round(next.delayMs)), token);
  throw new DelayedError();
}

function workerOptions(options: DeliveryConsumerOptions, concurrency: number) {
  return {
    connection: options.connection,
    prefix: options.prefix,
    concurrency,
    ...consumerLockOptions(options.lockMs),
  };
}
