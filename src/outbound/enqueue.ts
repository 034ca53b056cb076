import { randomUUID } from 'node:crypto';
import type { JobsOptions, Queue } from 'bullmq';
import type { DeliveryRecord } from '../db/deliveries.js';
import {
  OUTBOUND_BATCH_JOB,
  OUTBOUND_DELIVERY_JOB,
  type DeliveryRequest,
  type OutboundBatchJob,
  type OutboundDeliveryJob,
} from '../jobs/outbound-delivery-job.js';
import { hostKey } from './fairness/index.js';
import { JOB_RETENTION } from '../jobs/job-retention.js';
import { QUEUES } from '../jobs/queue-names.js';

/** Requests up to this size travel in the job; larger ones are read from the database. */
const INLINE_BODY_BYTES = 8 * 1024;

/** Deliveries in one batch job at most. */
const MAX_BATCH = 100;

// An unexpected error (not a failed attempt: those are recorded and rescheduled) retries every 5 s.
// How long finished jobs are kept: see JOB_RETENTION.
const CHAIN_JOB_OPTIONS = {
  attempts: 1_000,
  backoff: { type: 'fixed', delay: 5_000 },
  ...JOB_RETENTION[QUEUES.outboundWebhooks],
} satisfies JobsOptions;

const BATCH_JOB_OPTIONS = {
  ...CHAIN_JOB_OPTIONS,
  ...JOB_RETENTION[QUEUES.outboundBatches],
} satisfies JobsOptions;

export interface DeliveryToQueue {
  id: string;
  chain: number;
  request: DeliveryRequest;
}

/**
 * Queues a delivery's chain of attempts. The job id names the chain, so a replay (a new chain) is
 * never mistaken for the stored job of an earlier one. The job lives until the chain ends: retries
 * are the same job, delayed; a worker that dies mid-attempt leaves it to be picked up again.
 */
async function enqueueDelivery(queue: Queue<OutboundDeliveryJob>, delivery: DeliveryToQueue): Promise<void> {
  const job = deliveryJob(delivery);
  await queue.add(job.name, job.data, job.opts);
}

/** Queues a recorded delivery's current chain again (a replay, or a chain whose job Redis lost). */
export async function requeueRecordedDelivery(queue: Queue<OutboundDeliveryJob>, d: DeliveryRecord): Promise<void> {
  const { botId, messageId, method, url, headers, body } = d;
  await enqueueDelivery(queue, { id: d.id, chain: d.chain, request: { botId, messageId, method, url, headers, body } });
}

/** The job of a delivery's chain (also for `addBulk`). */
export function deliveryJob(delivery: DeliveryToQueue) {
  const data: OutboundDeliveryJob = { deliveryId: delivery.id, chain: delivery.chain, attempts: 0 };
  try {
    data.host = hostKey(new URL(delivery.request.url));
  } catch {
    // an invalid URL fails at its attempt, with the reason recorded
  }
  if (inlineable(delivery.request)) data.request = delivery.request;
  return chainJob(data);
}

/** The job of a chain from what a job already knows of it (a delivery leaving its batch, say). */
export function chainJob(data: OutboundDeliveryJob, delayMs = 0) {
  return {
    name: OUTBOUND_DELIVERY_JOB,
    data,
    opts: {
      ...CHAIN_JOB_OPTIONS,
      jobId: `delivery-${data.deliveryId}-${data.chain ?? 1}`,
      ...(delayMs > 0 ? { delay: Math.round(delayMs) } : {}),
    },
  };
}

function inlineable(request: DeliveryRequest): boolean {
  return Buffer.byteLength(request.body ?? '') <= INLINE_BODY_BYTES;
}

/**
 * How deliveries recorded together are queued: those whose request travels in the job share batch
 * jobs of up to MAX_BATCH (named before the rows are written, so each row can say where it waits);
 * a lone delivery, or one with a large body, gets its own chain job.
 */
export class DeliveryJobPlan {
  /** The batch job each batched delivery waits in. */
  readonly batchOf = new Map<string, string>();

  constructor(private readonly deliveries: readonly DeliveryToQueue[]) {
    const batchable = deliveries.filter((delivery) => inlineable(delivery.request));
    if (batchable.length < 2) return;
    for (let start = 0; start < batchable.length; start += MAX_BATCH) {
      const members = batchable.slice(start, start + MAX_BATCH);
      if (members.length < 2) break;
      const jobId = `batch-${randomUUID()}`;
      for (const member of members) this.batchOf.set(member.id, jobId);
    }
  }

  /** The jobs for those of the planned deliveries that are to be queued (`only`: all by default). */
  jobs(only?: ReadonlySet<string>) {
    const chains: ReturnType<typeof deliveryJob>[] = [];
    const batches = new Map<string, OutboundDeliveryJob[]>();
    for (const delivery of this.deliveries) {
      if (only && !only.has(delivery.id)) continue;
      const batch = this.batchOf.get(delivery.id);
      if (!batch) {
        chains.push(deliveryJob(delivery));
        continue;
      }
      const members = batches.get(batch) ?? [];
      members.push(deliveryJob(delivery).data);
      batches.set(batch, members);
    }
    const batchJobs = [...batches].map(([jobId, deliveries]) => ({
      name: OUTBOUND_BATCH_JOB,
      data: { deliveries } satisfies OutboundBatchJob,
      opts: { ...BATCH_JOB_OPTIONS, jobId },
    }));
    return { chains, batches: batchJobs };
  }
}
