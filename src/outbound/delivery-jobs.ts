/**
 * The processors of `outbound-webhooks` (one job per chain of attempts) and
 * `outbound-webhook-batches` (the first attempts of deliveries recorded together): plain functions
 * of a job's payload and their dependencies. They say what the job does next; the worker carries
 * it out in Redis.
 */
import { setImmediate as setImmediatePromise } from 'node:timers/promises';
import type { Queue } from 'bullmq';
import { isDatabaseUnavailable } from '../db/connection.js';
import type { OutboundBatchJob, OutboundDeliveryJob } from '../jobs/outbound-delivery-job.js';
import { dispatchDelivery, type DispatchDeps, type DispatchResult } from './dispatch.js';
import { chainJob } from './enqueue.js';

export interface DeliveryJobDeps extends DispatchDeps {
  /** Where a batched delivery that must wait goes: a chain job of its own. */
  chains: Pick<Queue<OutboundDeliveryJob>, 'addBulk'>;
}

/** What a job does next: nothing (it is finished), or wait in Redis for `delayMs`, with `data` as its payload when that changed. */
export type DeliveryJobNext<Data> = { kind: 'finished' } | { kind: 'wait'; delayMs: number; data?: Data };

const FINISHED = { kind: 'finished' } as const;

/** Deliveries leaving a batch are queued so many at a time. */
const HANDOFF_GROUP = 20;

/**
 * A chain job: one dispatch of its delivery. A retry is the same job, delayed by the schedule (or
 * the receiver's Retry-After); a delivery that moved on under it carries on as the database says.
 */
export async function processDeliveryChainJob(
  data: OutboundDeliveryJob,
  deps: DeliveryJobDeps,
): Promise<DeliveryJobNext<OutboundDeliveryJob>> {
  const result = await dispatchDelivery(data, 'chain', deps).catch((error: unknown) =>
    waitOutDatabaseOutage(error, data, deps),
  );
  switch (result.kind) {
    case 'finished':
      return FINISHED;
    case 'moved_on': {
      const current = await continuationFromDatabase(data, deps);
      return current ? { kind: 'wait', delayMs: current.delayMs, data: current.data } : FINISHED;
    }
    default:
      if (result.attempts === (data.attempts ?? 0)) return { kind: 'wait', delayMs: result.delayMs };
      return { kind: 'wait', delayMs: result.delayMs, data: { ...data, attempts: result.attempts } };
  }
}

/**
 * A batch job: every delivery is dispatched (in line for its host, then for one of this process's
 * batch slots). One that must retry leaves for a chain job of its own; those held back by their
 * host (busy or short-circuited) stay together, and the batch waits in Redis as one job until the
 * earliest of them may go. A batch run again (it waited, or its worker died) first asks the
 * database which of its deliveries are still to be attempted as it knows them.
 */
export async function processDeliveryBatchJob(
  job: { data: OutboundBatchJob; attemptsStarted: number },
  deps: DeliveryJobDeps,
): Promise<DeliveryJobNext<OutboundBatchJob>> {
  const sorting = new BatchSorting();
  const members =
    job.attemptsStarted > 1 ? await membersStillAsQueued(job.data.deliveries, sorting, deps) : job.data.deliveries;
  const dispatches: Array<Promise<void>> = [];
  for (const [index, member] of members.entries()) {
    // Let other work run between groups of starts: a hundred at once would hold the event loop.
    if (index > 0 && index % 10 === 0) await setImmediatePromise();
    dispatches.push(dispatchBatchMember(member, sorting, deps));
  }
  await Promise.all(dispatches);
  // In small groups: Redis runs a bulk add as one transaction, and a long one holds up every other client.
  for (let start = 0; start < sorting.leaving.length; start += HANDOFF_GROUP) {
    await deps.chains.addBulk(sorting.leaving.slice(start, start + HANDOFF_GROUP));
  }
  if (sorting.held.length === 0) return FINISHED;
  return { kind: 'wait', delayMs: sorting.heldForMs, data: { deliveries: sorting.held } };
}

type ChainJob = ReturnType<typeof chainJob>;

/** Where a batch's deliveries go: chain jobs of their own, or held with the batch until the earliest may go. */
class BatchSorting {
  readonly leaving: ChainJob[] = [];
  readonly held: OutboundDeliveryJob[] = [];
  heldForMs = Infinity;

  leave(job: ChainJob): void {
    this.leaving.push(job);
  }

  hold(member: OutboundDeliveryJob, delayMs: number): void {
    this.held.push(member);
    this.heldForMs = Math.min(this.heldForMs, delayMs);
  }
}

/** The members the database still has as the batch queued them; the others leave as it has them now. */
async function membersStillAsQueued(
  members: OutboundDeliveryJob[],
  sorting: BatchSorting,
  deps: DeliveryJobDeps,
): Promise<OutboundDeliveryJob[]> {
  const unchanged: OutboundDeliveryJob[] = [];
  await Promise.all(
    members.map(async (member) => {
      const current = await continuationFromDatabase(member, deps);
      if (!current) return;
      if (current.data.chain === member.chain && current.data.attempts === (member.attempts ?? 0))
        unchanged.push(member);
      else sorting.leave(chainJob(current.data, current.delayMs));
    }),
  );
  return unchanged;
}

/** One member's dispatch; an unexpected failure sends it off to a chain job of its own, the batch carries on. */
async function dispatchBatchMember(
  member: OutboundDeliveryJob,
  sorting: BatchSorting,
  deps: DeliveryJobDeps,
): Promise<void> {
  const result = await dispatchDelivery(member, 'batch', deps)
    .catch((error: unknown) => waitOutDatabaseOutage(error, member, deps))
    .catch((error: unknown): DispatchResult => {
      deps.log.error({ err: error, deliveryId: member.deliveryId }, 'batched delivery failed; it leaves its batch');
      return { kind: 'retry_later', delayMs: 5_000, attempts: member.attempts ?? 0 };
    });
  switch (result.kind) {
    case 'held_by_host':
      sorting.hold({ ...member, attempts: result.attempts }, result.delayMs);
      return;
    case 'retry_later':
      sorting.leave(chainJob({ ...member, attempts: result.attempts }, result.delayMs));
      return;
    case 'moved_on': {
      const current = await continuationFromDatabase(member, deps);
      if (current) sorting.leave(chainJob(current.data, current.delayMs));
      return;
    }
    case 'finished':
      return;
  }
}

/**
 * Postgres is away: the delivery waits 2–5 s without spending its retries. Per delivery, not a
 * pause of the worker: a batch's other deliveries, and other hosts' chains, carry on.
 */
function waitOutDatabaseOutage(error: unknown, job: OutboundDeliveryJob, deps: DeliveryJobDeps): DispatchResult {
  if (!isDatabaseUnavailable(error)) throw error;
  deps.log.warn({ err: error, deliveryId: job.deliveryId }, 'postgres unreachable; delivery waits');
  return { kind: 'retry_later', delayMs: 2_000 + deps.random() * 3_000, attempts: job.attempts ?? 0 };
}

/** A delivery's chain job as the database has it, and when its next attempt is due; null once it is no longer pending. */
async function continuationFromDatabase(
  job: OutboundDeliveryJob,
  deps: DeliveryJobDeps,
): Promise<{ data: OutboundDeliveryJob; delayMs: number } | null> {
  const delivery = await deps.store.loadPending(job.deliveryId);
  if (!delivery) return null;
  return {
    data: { ...job, chain: delivery.chain, attempts: delivery.attemptCount },
    delayMs: Math.max(0, (delivery.nextAttemptAt?.getTime() ?? 0) - Date.now()),
  };
}
