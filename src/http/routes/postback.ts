import type { Context } from 'koa';
import type { Redis } from 'ioredis';
import { DomainError } from '../../domain/errors.js';
import { parsePostback, resolvePostback } from '../../domain/postback.js';
import type { DialogUpdateJob } from '../../jobs/dialog-update-job.js';
import type { DialogUpdateQueue } from '../../jobs/dialog-update-queue.js';
import {
  claimIdempotencyKey,
  completeIdempotencyKey,
  idempotencyKey,
  releaseIdempotencyKey,
} from '../../redis/idempotency.js';
import { MAX_REQUEST_BYTES, parseUrlEncoded, readParamsBody } from '../body.js';
import { DeadlineTracker } from '../deadline.js';
import type { PostbackViewCache } from '../postback-view-cache.js';
import type { RateLimiter } from '../rate-limiter.js';

export interface PostbackDeps {
  queue: DialogUpdateQueue;
  redis: Redis;
  queuePrefix: string;
  views: PostbackViewCache;
  rateLimiter: RateLimiter;
  defaultRateLimit: number;
  /** How long queueing may take before the request is answered 503. */
  enqueueTimeoutMs?: number;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** `GET|POST /api/bots/webhooks/{postbackId}/updateDialog`: check, queue durably, answer. */
export function postbackHandler(deps: PostbackDeps) {
  const timeoutMs = deps.enqueueTimeoutMs ?? 800;
  const deadlines = new DeadlineTracker();
  const withTimeout = <T>(promise: Promise<T>, ms: number) => deadlines.within(promise, ms);

  const unavailable = (error: unknown): never => {
    throw new DomainError('unavailable', 'queue_unavailable', 'the update queue is unreachable', { cause: error });
  };

  // A disconnected producer is answered at once; a hung Redis within the timeout.
  const ensureConnected = (): void => {
    if (deps.redis.status !== 'ready') unavailable(new Error(`redis connection is ${deps.redis.status}`));
  };

  /**
   * Queues the update; `settled` (when given) learns how the add really ended, even after the
   * request was answered 503 for taking too long.
   */
  const enqueue = async (job: DialogUpdateJob, settled?: (updateId: string | null) => void): Promise<string> => {
    try {
      ensureConnected();
    } catch (error) {
      settled?.(null);
      throw error;
    }
    const adding = deps.queue.add(job);
    adding.then(
      (id) => settled?.(id),
      () => settled?.(null),
    );
    return withTimeout(adding, timeoutMs).catch(unavailable);
  };

  return async (ctx: Context, postbackId: string): Promise<void> => {
    const endpoint = UUID.test(postbackId) ? await deps.views.endpoint(postbackId.toLowerCase()) : null;
    if (!endpoint) throw new DomainError('not_found', 'unknown_webhook', 'no webhook with this id', { param: 'postbackId' });

    const wait = deps.rateLimiter.take(endpoint.endpointId, endpoint.rateLimit ?? deps.defaultRateLimit);
    if (wait > 0) {
      ctx.set('Retry-After', String(wait));
      throw new DomainError('rate_limited', 'rate_limited', 'over this webhook\'s rate limit; retry later');
    }

    if (ctx.querystring.length > MAX_REQUEST_BYTES) {
      throw new DomainError('too_large', 'request_too_large', `the query string is larger than ${MAX_REQUEST_BYTES} bytes`);
    }
    const body = ctx.method === 'POST' ? await readParamsBody(ctx) : null;
    const idempotencyHeader = ctx.get('idempotency-key');
    const request = parsePostback({
      query: parseUrlEncoded(ctx.querystring),
      body,
      idempotencyKey: idempotencyHeader === '' ? undefined : idempotencyHeader,
    });
    const bot = await deps.views.bot(endpoint.botId);
    const job: DialogUpdateJob = {
      botId: endpoint.botId,
      chatId: request.chatId,
      patch: resolvePostback(request, bot),
    };

    if (request.eventId === undefined) {
      ctx.status = 202;
      ctx.body = { ok: true, updateId: await enqueue(job) };
      return;
    }

    const key = idempotencyKey(deps.queuePrefix, endpoint.botId, request.eventId);
    ensureConnected();
    const claim = await withTimeout(claimIdempotencyKey(deps.redis, key), timeoutMs).catch(unavailable);
    if (claim.state === 'done') {
      ctx.status = 200;
      ctx.body = { ok: true, duplicate: true, updateId: claim.updateId };
      return;
    }
    if (claim.state === 'in_progress') {
      ctx.set('Retry-After', '1');
      throw new DomainError('conflict', 'request_in_progress', 'an update with this eventId is being queued; retry shortly', { param: 'eventId' });
    }
    // The key follows the add itself, not this answer: an add that outlives its deadline (answered
    // 503) still completes the key, so the sender's retry is a duplicate, not a second update.
    const updateId = await enqueue(job, (queued) => {
      const done = queued === null ? releaseIdempotencyKey(deps.redis, key) : completeIdempotencyKey(deps.redis, key, queued);
      done.catch(() => undefined);
    });
    ctx.status = 202;
    ctx.body = { ok: true, updateId };
  };
}
