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
 * Rethrows `error` unless it means Postgres is unreachable; then pauses `worker` for `retryMs` and
 * throws BullMQ's rate-limit error, which puts the job back without spending one of its attempts.
 * Call it from a processor's catch: `catch (error) { await pauseOnOutage(worker, error, pause) }`.
 */
export async function pauseOnOutage(worker: Worker, error: unknown, pause: OutagePause): Promise<never> {
  if (!isDatabaseUnavailable(error)) throw error;
  pause.log.warn({ err: error }, pause.message);
  await worker.rateLimit(pause.retryMs);
  throw Worker.RateLimitError();
}
