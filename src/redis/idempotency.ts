import { createHash, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { scripts } from './scripts.js';

const IDEMPOTENCY_TTL_SECONDS = 24 * 3600;
const PENDING = 'pending';
const PENDING_TTL_MS = 30_000;

/** Which URL an event id belongs to: one postback endpoint's `updateDialog`, or its `conversion`. */
export interface IdempotencyScope {
  endpointId: string;
  route: 'updateDialog' | 'conversion';
}

/** An event id to claim: its key, the token that lets only its claimant release it, and its per-bot key of old. */
export interface IdempotencyKeyRef {
  key: string;
  token: string;
  perBotKey: string;
}

export type IdempotencyClaim = { state: 'claimed' } | { state: 'in_progress' } | { state: 'done'; updateId: string };

function digest(eventId: string): string {
  return createHash('sha256').update(eventId).digest('base64url');
}

/**
 * An event id is one event per postback URL: two endpoints of a bot (or an endpoint's updateDialog
 * and its conversion) using the same eventId are two events.
 */
export function idempotencyKey(prefix: string, scope: IdempotencyScope, eventId: string): string {
  return `${prefix}:idempotency:${scope.endpointId}:${scope.route}:${digest(eventId)}`;
}

/**
 * Where a key was kept while event ids were scoped per bot: an update queued under it is still a
 * duplicate for its 24 h. (Only read, never written.)
 */
function perBotKey(prefix: string, botId: string, eventId: string): string {
  return `${prefix}:idempotency:${botId}:${digest(eventId)}`;
}

export function idempotencyKeyRef(
  prefix: string,
  scope: IdempotencyScope & { botId: string },
  eventId: string,
): IdempotencyKeyRef {
  return {
    key: idempotencyKey(prefix, scope, eventId),
    token: `${PENDING}:${randomBytes(9).toString('base64url')}`,
    perBotKey: perBotKey(prefix, scope.botId, eventId),
  };
}

/**
 * Claims an event id before its update is queued (SET NX GET: one step). A repeat within 24 h finds
 * the update id of the first; a repeat while the first is still being queued finds it in progress.
 * The claim holds a token of its own, so that only its request can let it go.
 */
export async function claimIdempotencyKey(redis: Redis, ref: IdempotencyKeyRef): Promise<IdempotencyClaim> {
  const replies =
    (await redis
      .pipeline()
      .get(ref.perBotKey)
      .call('SET', ref.key, ref.token, 'PX', String(PENDING_TTL_MS), 'NX', 'GET')
      .exec()) ?? [];
  for (const [error] of replies) if (error) throw error;
  const old = (replies[0]?.[1] ?? null) as string | null;
  const previous = (replies[1]?.[1] ?? null) as string | null;
  if (previous === null) {
    if (old === null || old.startsWith(PENDING)) return { state: 'claimed' };
    // Queued before event ids were scoped per URL: the claim just taken records that update.
    await completeIdempotencyKey(redis, ref, old);
    return { state: 'done', updateId: old };
  }
  if (previous.startsWith(PENDING)) return { state: 'in_progress' };
  return { state: 'done', updateId: previous };
}

/**
 * The update was queued: a repeat within 24 h is answered with its id. Written also when Redis is
 * out of memory (a script flagged allow-oom; a plain SET on a Redis without script flags).
 */
async function completeIdempotencyKey(redis: Redis, ref: IdempotencyKeyRef, updateId: string): Promise<void> {
  try {
    await scripts.completeIdempotencyKey.run(redis, [ref.key], [updateId, IDEMPOTENCY_TTL_SECONDS]);
  } catch (error) {
    // Redis before 7 does not read the script's flags line.
    if (!(error instanceof Error) || !/shebang|flags|compile/i.test(error.message)) throw error;
    await redis.set(ref.key, updateId, 'EX', IDEMPOTENCY_TTL_SECONDS);
  }
}

/**
 * Settles a claim once its add ended: completed with the update id when a job was queued, else let
 * go. Tried again for a while when Redis fails meanwhile: a claim left pending refuses the
 * sender's retries, and once it expired lets one queue the update a second time.
 */
export async function settleIdempotencyKey(
  redis: Redis,
  ref: IdempotencyKeyRef,
  updateId: string | null,
  retryMs = [100, 500, 2_000, 5_000],
): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      if (updateId === null) await releaseIdempotencyKey(redis, ref);
      else await completeIdempotencyKey(redis, ref, updateId);
      return;
    } catch (error) {
      if (attempt >= retryMs.length) throw error;
      await new Promise((resolve) => setTimeout(resolve, retryMs[attempt]));
    }
  }
}

/**
 * Nothing was queued: the claim goes, so that the sender's retry is accepted. Only the claim of
 * this request (by its token), never a completed key or another request's claim.
 */
export async function releaseIdempotencyKey(redis: Redis, ref: IdempotencyKeyRef): Promise<void> {
  await scripts.releaseLock.run(redis, [ref.key], [ref.token]);
}
