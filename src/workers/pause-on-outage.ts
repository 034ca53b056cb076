import { Worker } from 'bullmq';
import { isDatabaseUnavailable } from '../db/connection.js';
import type { Logger } from '../config/log.js';

export interface OutagePause {
  log: Logger;
  /** Logged when the worker pauses, e.g. 'postgres unreachable; dialog runs wait'. */
  message: string;
  /** How long the worker stops taking jobs. */
  retryMs: number;
}

/**
 * How long a worker still counts as paused after its pause ended without a job completing: during
 * an outage it takes one job after each pause, which fails (at worst after the pool's 10 s acquire
 * timeout) and pauses it again, so readiness must not flap between pauses.
 */
const PAUSE_HOLD_MS = 15_000;

/** Each paused worker's last pause (ms), until one of its jobs completes. */
const pausedAt = new WeakMap<Worker, { at: number; retryMs: number }>();
const watched = new WeakSet<Worker>();

function markPaused(worker: Worker, retryMs: number): void {
  pausedAt.set(worker, { at: Date.now(), retryMs });
  if (watched.has(worker)) return;
  watched.add(worker);
  // A completed job means Postgres answers again.
  worker.on('completed', () => pausedAt.delete(worker));
}

/** Whether `worker` is paused on a Postgres outage (or was, and has completed no job since). */
function isPausedOnOutage(worker: Worker, now = Date.now()): boolean {
  const pause = pausedAt.get(worker);
  return pause !== undefined && now < pause.at + pause.retryMs + PAUSE_HOLD_MS;
}

/** The names of the queues whose worker is paused on a Postgres outage. */
export function pausedQueues(workers: readonly Worker[]): string[] {
  const now = Date.now();
  return workers.filter((worker) => isPausedOnOutage(worker, now)).map((worker) => worker.name);
}

/**
 * Rethrows `error` unless it means Postgres is unreachable; then pauses `worker` for `retryMs` and
 * throws BullMQ's rate-limit error, which puts the job back without spending one of its attempts.
 * Call it from a processor's catch: `catch (error) { await pauseOnOutage(worker, error, pause) }`.
 */
export async function pauseOnOutage(worker: Worker, error: unknown, pause: OutagePause): Promise<never> {
  if (!isDatabaseUnavailable(error)) throw error;
  pause.log.warn({ err: error }, pause.message);
  markPaused(worker, pause.retryMs);
  await worker.rateLimit(pause.retryMs);
  throw Worker.RateLimitError();
}
