import type { Queue } from 'bullmq';
import type { Knex } from 'knex';
import { isDatabaseUnavailable } from '../db/connection.js';
import { findChainStates, insertDeliveries } from '../db/deliveries.js';
import { GroupCommit } from '../db/group-commit.js';
import type { DeliveryRequest, OutboundBatchJob, OutboundDeliveryJob } from '../jobs/outbound-delivery-job.js';
import { DeliveryJobPlan, deliveryJob } from './enqueue.js';

export interface NewDelivery {
  id: string;
  chatId: number | null;
  stepId: string | null;
  request: DeliveryRequest;
}

export interface OutboundQueues {
  /** `outbound-webhooks`: one job per chain of attempts. */
  chains: Queue<OutboundDeliveryJob>;
  /** `outbound-webhook-batches`: first attempts of deliveries recorded together. */
  batches: Queue<OutboundBatchJob>;
}

/**
 * Records outbound webhook calls and queues them. Calls made at about the same time (many script
 * runs in one worker) are written in one INSERT and queued in shared batch jobs; a lone call is
 * written and queued at once, as a job of its own.
 */
/** How a delivery's write in a batch ended: null when it was recorded and queued. */
type WriteFailure = { error: unknown } | null;

export class DeliveryRecorder {
  private readonly group: GroupCommit<NewDelivery, WriteFailure>;

  constructor(
    private readonly db: Knex,
    private readonly queues: OutboundQueues,
  ) {
    this.group = new GroupCommit((items) => this.recordTogether(items), 500);
  }

  /** Records and queues one delivery; a delivery already recorded under this id is queued again only if it is still to be delivered. */
  async record(delivery: NewDelivery): Promise<void> {
    const failure = await this.group.submit(delivery);
    if (failure) throw failure.error;
  }

  /** Records and queues deliveries known together (a bulk import, say) in one go. */
  async recordAll(deliveries: readonly NewDelivery[]): Promise<void> {
    const plan = new DeliveryJobPlan(
      deliveries.map((delivery) => ({ id: delivery.id, chain: 1, request: delivery.request })),
    );
    const fresh = await insertDeliveries(this.db, deliveries, plan.batchOf);
    const { chains, batches } = plan.jobs(fresh);
    const known = deliveries.filter((delivery) => !fresh.has(delivery.id));
    if (known.length > 0) chains.push(...(await this.stillToQueue(known)));
    await Promise.all([
      chains.length > 0 ? this.queues.chains.addBulk(chains) : undefined,
      batches.length > 0 ? this.queues.batches.addBulk(batches) : undefined,
    ]);
  }

  /** Whether the batch job a delivery was queued in still holds it (waiting, running or retrying). */
  async waitsInBatch(batchJobId: string | null): Promise<boolean> {
    if (!batchJobId) return false;
    const job = await this.queues.batches.getJob(batchJobId);
    return Boolean(job) && !(await job!.isFailed());
  }

  /**
   * Deliveries recorded by an earlier try of the same run: queued again only if still to be
   * delivered and not waiting in a batch (a chain's job id makes a repeat a no-op while it exists).
   */
  private async stillToQueue(known: readonly NewDelivery[]) {
    const states = await findChainStates(
      this.db,
      known.map((delivery) => delivery.id),
    );
    const byId = new Map(known.map((delivery) => [delivery.id, delivery]));
    const jobs: ReturnType<typeof deliveryJob>[] = [];
    for (const { id, state, chain, queuedIn } of states) {
      if (state !== 'pending' || (await this.waitsInBatch(queuedIn))) continue;
      jobs.push(deliveryJob({ id, chain, request: byId.get(id)!.request }));
    }
    return jobs;
  }

  /** One INSERT for the group; if a bad row fails it, each is recorded alone so that only the bad one fails. */
  private async recordTogether(items: NewDelivery[]): Promise<WriteFailure[]> {
    try {
      await this.recordAll(items);
      return items.map(() => null);
    } catch (error) {
      if (items.length === 1 || isDatabaseUnavailable(error)) return items.map(() => ({ error }));
      return Promise.all(
        items.map((item) =>
          this.recordAll([item]).then(
            () => null,
            (failure: unknown) => ({ error: failure }),
          ),
        ),
      );
    }
  }
}
