import type { Queue } from 'bullmq';
import { OUTBOUND_DELIVERY_JOB, type OutboundDeliveryJob } from '../jobs/outbound-delivery-job.js';

/**
 * Queues a delivery's chain of attempts. The job id names the chain, so a replay (a new chain) is
 * never mistaken for the stored job of an earlier one. The job lives until the chain ends: retries
 * are the same job, delayed; a worker that dies mid-attempt leaves it to be picked up again.
 */
export async function enqueueDelivery(queue: Queue<OutboundDeliveryJob>, deliveryId: string, chain: number): Promise<void> {
  await queue.add(
    OUTBOUND_DELIVERY_JOB,
    { deliveryId },
    { jobId: `delivery-${deliveryId}-${chain}`, attempts: 1_000, removeOnComplete: true, removeOnFail: { age: 7 * 86_400 } },
  );
}
