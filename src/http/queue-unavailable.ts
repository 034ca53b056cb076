import type { Redis } from 'ioredis';
import { DomainError } from '../domain/errors.js';

/** The update queue could not take the work: a 503 (`queue_unavailable`), the caller retries. */
export function queueUnavailable(error: unknown): never {
  throw new DomainError('unavailable', 'queue_unavailable', 'the update queue is unreachable', { cause: error });
}

/** Answers at once, rather than waiting on a reconnect, while the queue's Redis connection is down. */
export function ensureQueueReachable(redis: Redis): void {
  if (redis.status !== 'ready') queueUnavailable(new Error(`redis connection is ${redis.status}`));
}
