import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

const IDEMPOTENCY_TTL_SECONDS = 24 * 3600;
const PENDING = 'pending';
const PENDING_TTL_MS = 30_000;

export type IdempotencyClaim = { state: 'claimed' } | { state: 'in_progress' } | { state: 'done'; updateId: string };

export function idempotencyKey(prefix: string, botId: string, eventId: string): string {
  const digest = createHash('sha256').update(eventId).digest('base64url');
  return `${prefix}:idempotency:${botId}:${digest}`;
}

/**
 * Claims an event id before its update is queued. A repeat within 24 h finds the update id of the
 * first; a repeat while the first is still being queued finds it in progress.
 */
export async function claimIdempotencyKey(redis: Redis, key: string): Promise<IdempotencyClaim> {
  // SET … NX GET: sets when absent and returns the previous value in one step.
  const previous = (await redis.call('SET', key, PENDING, 'PX', String(PENDING_TTL_MS), 'NX', 'GET')) as string | null;
  if (previous === null) return { state: 'claimed' };
  if (previous === PENDING) return { state: 'in_progress' };
  return { state: 'done', updateId: previous };
}

export async function completeIdempotencyKey(redis: Redis, key: string, updateId: string): Promise<void> {
  await redis.set(key, updateId, 'EX', IDEMPOTENCY_TTL_SECONDS);
}

export async function releaseIdempotencyKey(redis: Redis, key: string): Promise<void> {
  await redis.del(key);
}
