import type { WorkerOptions } from 'bullmq';

/**
 * How long work stays with a process that stopped answering, derived from one setting
 * (QUEUE_LOCK_MS) for every queue and lease, so that a killed worker's work is taken over within
 * about 1.5 × `lockMs`:
 * - a job's lock lasts `lockMs` (BullMQ renews it every half of that);
 * - stalled jobs are looked for every `lockMs / 2`: a job whose lock is gone is back in its queue
 *   at the second check after its worker died, at most `lockMs + lockMs / 2` later;
 * - a dialog lease or a poll lock lasts `lockMs`, renewed every third of it (a free poll lock is
 *   tried every `lockMs / 2`, at most 5 s);
 * - an open dialog input untouched for `lockMs` has lost its drain (the sweeper looks every `lockMs / 2`).
 */
export interface HandoverTimings {
  lockMs: number;
  stalledIntervalMs: number;
  leaseTtlMs: number;
  staleInputMs: number;
  sweepIntervalMs: number;
}

export function handoverTimings(lockMs: number): HandoverTimings {
  const half = Math.max(250, Math.floor(lockMs / 2));
  // A lease is renewed at most every 500 ms: it must outlive that.
  const leaseTtlMs = Math.max(1_000, lockMs);
  return { lockMs, stalledIntervalMs: half, leaseTtlMs, staleInputMs: leaseTtlMs, sweepIntervalMs: half };
}

/**
 * A job stalls each time its worker dies (or blocks longer than the lock): that alone must not
 * fail it for good. An accepted dialog update lives only in Redis until it is applied, so it is
 * taken up again however often it stalled.
 */
const MAX_STALLED_COUNT = 1_000;

/** The lock options every consumer's Worker takes, from QUEUE_LOCK_MS. */
export function consumerLockOptions(
  lockMs: number,
): Required<Pick<WorkerOptions, 'lockDuration' | 'stalledInterval' | 'maxStalledCount'>> {
  return {
    lockDuration: lockMs,
    stalledInterval: handoverTimings(lockMs).stalledIntervalMs,
    maxStalledCount: MAX_STALLED_COUNT,
  };
}
