import type { Queue } from 'bullmq';
import type { Knex } from 'knex';
import { findDelivery, listStrandedDeliveries } from '../db/deliveries.js';
import type { OutboundDeliveryJob } from '../jobs/outbound-delivery-job.js';
import type { Logger } from '../config/log.js';
import type { DeliveryRecorder } from '../outbound/delivery-recorder.js';
import { requeueRecordedDelivery } from '../outbound/enqueue.js';

/**
 * Queues again deliveries left pending with nothing due for a while: recorded while Redis was
 * away, or whose job was lost. The job id names the chain, so a delivery whose job still exists
 * (waiting for a busy host, say) is left as it is, and so is one still waiting in its batch job.
 * Harmless to run in every worker process.
 */
export function startStrandedSweeper(options: {
  db: Knex;
  queue: Queue<OutboundDeliveryJob>;
  /** Tells whether a delivery still waits in the batch job it was queued in. */
  recorder: Pick<DeliveryRecorder, 'waitsInBatch'>;
  log: Logger;
  intervalMs?: number;
  staleMs?: number;
}): { stop(): void } {
  const staleMs = options.staleMs ?? 10 * 60_000;
  const sweep = async () => {
    const stranded = await listStrandedDeliveries(options.db, staleMs);
    let queued = 0;
    for (const { id, queuedIn: batch } of stranded) {
      if (await options.recorder.waitsInBatch(batch)) continue;
      const d = await findDelivery(options.db, id);
      if (!d || d.state !== 'pending') continue;
      await requeueRecordedDelivery(options.queue, d);
      queued++;
    }
    if (queued > 0) options.log.info({ deliveries: queued }, 'pending deliveries queued again');
  };
  const interval = options.intervalMs ?? 60_000;
  const timer = setInterval(
    () => {
      sweep().catch((error: unknown) => options.log.warn({ err: error }, 'pending-delivery sweep failed'));
    },
    interval + Math.floor(Math.random() * interval * 0.2),
  );
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
