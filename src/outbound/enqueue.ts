import type { Queue } from 'bullmq';
import { OUTBOUND_DELIVERY_JOB, type DeliveryRequest, type OutboundDeliveryJob } from '../jobs/outbound-delivery-job.js';
import { hostKey } from './fairness/index.js';

/** Requests up to this size travel in the job; larger ones are read from the database. */
const INLINE_BODY_BYTES = 8 * 1024;

/**
 * Queues a delivery's chain of attempts. The job id names the chain, so a replay (a new chain) is
 * never mistaken for the stored job of an earlier one. The job lives until the chain ends: retries
 * are the same job, delayed; a worker that dies mid-attempt leaves it to be picked up again.
 */
export async function enqueueDelivery(queue: Queue<OutboundDeliveryJob>, delivery: DeliveryToQueue): Promise<void> {
  const job = deliveryJob(delivery);
  await queue.add(job.name, job.data, job.opts);
}

export interface DeliveryToQueue {
  id: string;
  chain: number;
  request: DeliveryRequest;
}

/** The job of a delivery's chain (also for `addBulk`). */
export function deliveryJob(delivery: DeliveryToQueue) {
  const data: OutboundDeliveryJob = { deliveryId: delivery.id, chain: delivery.chain, attempts: 0 };
  try {
    data.host = hostKey(new URL(delivery.request.url));
  } catch {
    // an invalid URL fails at its attempt, with the reason recorded
  }
  if (Buffer.byteLength(delivery.request.body ?? '') <= INLINE_BODY_BYTES) data.request = delivery.request;
  return {
    name: OUTBOUND_DELIVERY_JOB,
    data,
    opts: {
      jobId: `delivery-${delivery.id}-${delivery.chain}`,
      attempts: 1_000,
      // An unexpected error (not a failed attempt: those are recorded and rescheduled) retries every 5 s.
      backoff: { type: 'fixed', delay: 5_000 },
      removeOnComplete: true,
      removeOnFail: { age: 7 * 86_400 },
    },
  };
}
