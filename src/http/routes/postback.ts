// The postback endpoint's two routes, which share its secret id, rate limit and queue:
// `…/{postbackId}/updateDialog` (API.md §1) and `…/{postbackId}/conversion` (API.md §5).
import type { Context } from 'koa';
import type { Redis } from 'ioredis';
import { DomainError } from '../../domain/errors.js';
import { parsePostback, resolvePostback, type PostbackRequest } from '../../domain/postback.js';
import {
  CONVERSION_PARAMS,
  decideConversionMove,
  readConversion,
  type ConversionRequest,
} from '../../domain/tracker/conversion.js';
import { findConversion, recordIgnoredConversion } from '../../db/conversions.js';
import type { Knex } from 'knex';
import type { DialogUpdateJob } from '../../jobs/dialog-update-job.js';
import type { DialogUpdateQueue } from '../../jobs/dialog-update-queue.js';
import {
  claimIdempotencyKey,
  idempotencyKeyRef,
  releaseIdempotencyKey,
  settleIdempotencyKey,
  type IdempotencyClaim,
  type IdempotencyKeyRef,
  type IdempotencyScope,
} from '../../redis/idempotency.js';
import { MAX_REQUEST_BYTES, parseUrlEncoded, readParamsBody } from '../body.js';
import { DeadlineTracker } from '../deadline.js';
import { ensureQueueReachable, queueUnavailable } from '../queue-unavailable.js';
import type { PostbackViewCache } from '../postback-view-cache.js';
import type { RateLimiter } from '../rate-limiter.js';
import { traced } from '../../observability/request-context.js';

export interface PostbackDeps {
  queue: DialogUpdateQueue;
  redis: Redis;
  queuePrefix: string;
  views: PostbackViewCache;
  rateLimiter: RateLimiter;
  defaultRateLimit: number;
  /** How long queueing may take before the request is answered 503. */
  enqueueTimeoutMs?: number;
  /** For conversions: their duplicates and refused moves are answered from Postgres. */
  db: Knex;
}

type EndpointView = NonNullable<Awaited<ReturnType<PostbackViewCache['endpoint']>>>;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Talks to Redis within a deadline: a disconnected producer is answered at once, a hung Redis
 * within `timeoutMs`; either is a 503 (queue_unavailable).
 */
class BoundedQueue {
  private readonly deadlines = new DeadlineTracker();

  constructor(
    private readonly deps: PostbackDeps,
    private readonly timeoutMs: number,
  ) {}

  ensureConnected(): void {
    ensureQueueReachable(this.deps.redis);
  }

  /**
   * Queues the update; `settled` (when given) learns how the add really ended, even after the
   * request was answered 503 for taking too long: the update id when a job was queued (also if a
   * later step of the add failed), null only when none was.
   */
  async enqueue(job: DialogUpdateJob, settled?: (updateId: string | null) => void): Promise<string> {
    try {
      this.ensureConnected();
    } catch (error) {
      settled?.(null);
      throw error;
    }
    let queued: string | null = null;
    const adding = this.deps.queue.add(job, (id) => {
      queued = id;
    });
    adding.then(
      (id) => settled?.(id),
      () => settled?.(queued),
    );
    return this.deadlines.within(adding, this.timeoutMs).catch(queueUnavailable);
  }

  /** Claims the event id; a claim that lands after the request was answered 503 is let go again. */
  claim(ref: IdempotencyKeyRef): Promise<IdempotencyClaim> {
    this.ensureConnected();
    const claiming = claimIdempotencyKey(this.deps.redis, ref);
    return this.deadlines.within(claiming, this.timeoutMs).catch((error: unknown) => {
      claiming
        .then((claim) => (claim.state === 'claimed' ? releaseIdempotencyKey(this.deps.redis, ref) : undefined))
        .catch(() => undefined);
      return queueUnavailable(error);
    });
  }
}

async function findEndpoint(deps: PostbackDeps, postbackId: string): Promise<EndpointView> {
  const endpoint = UUID.test(postbackId) ? await deps.views.endpoint(postbackId.toLowerCase()) : null;
  if (!endpoint)
    throw new DomainError('not_found', 'unknown_webhook', 'no webhook with this id', { param: 'postbackId' });
  return endpoint;
}

function takeRateLimit(ctx: Context, deps: PostbackDeps, endpoint: EndpointView): void {
  const wait = deps.rateLimiter.take(endpoint.endpointId, endpoint.rateLimit ?? deps.defaultRateLimit);
  if (wait > 0) {
    ctx.set('Retry-After', String(wait));
    throw new DomainError('rate_limited', 'rate_limited', "over this webhook's rate limit; retry later");
  }
}

/** The postback's parameters from the query string and (POST) the body. */
async function readPostback(ctx: Context): Promise<PostbackRequest> {
  if (ctx.querystring.length > MAX_REQUEST_BYTES) {
    throw new DomainError(
      'too_large',
      'request_too_large',
      `the query string is larger than ${MAX_REQUEST_BYTES} bytes`,
    );
  }
  const body = ctx.method === 'POST' ? await readParamsBody(ctx) : null;
  const idempotencyHeader = ctx.get('idempotency-key');
  return parsePostback({
    query: parseUrlEncoded(ctx.querystring),
    body,
    idempotencyKey: idempotencyHeader === '' ? undefined : idempotencyHeader,
  });
}

/** The dialog update the postback asks for, checked against its bot (its steps, its typed fields). */
async function dialogUpdateJob(
  deps: PostbackDeps,
  endpoint: EndpointView,
  request: PostbackRequest,
): Promise<DialogUpdateJob> {
  const bot = await deps.views.bot(endpoint.botId);
  const patch = resolvePostback(request, bot);
  if (request.chatId !== null) return { botId: endpoint.botId, chatId: request.chatId, patch };
  // By click id: the dialog that claimed the click, or the click itself until someone claims it.
  const clickid = request.clickid!;
  const chatId = await deps.views.clickChat(endpoint.botId, clickid);
  if (chatId === undefined) {
    throw new DomainError('not_found', 'unknown_clickid', 'no click with this clickid on this bot', {
      param: 'clickid',
    });
  }
  return chatId === null ? { botId: endpoint.botId, clickid, patch } : { botId: endpoint.botId, chatId, patch };
}

/** Queues the update once per eventId and postback URL: a repeat of a queued one is answered as a duplicate. */
async function queueOnce(
  ctx: Context,
  deps: PostbackDeps,
  queue: BoundedQueue,
  job: DialogUpdateJob,
  eventId: string,
  scope: IdempotencyScope,
): Promise<void> {
  const key = idempotencyKeyRef(deps.queuePrefix, { ...scope, botId: job.botId }, eventId);
  const claim = await queue.claim(key);
  if (claim.state === 'done') {
    ctx.status = 200;
    ctx.body = { ok: true, duplicate: true, updateId: claim.updateId };
    return;
  }
  if (claim.state === 'in_progress') {
    // Never a 4xx: senders take 4xx as final, and the first request may still fail to queue.
    ctx.set('Retry-After', '1');
    throw new DomainError(
      'unavailable',
      'request_in_progress',
      'an update with this eventId is being queued; retry shortly',
      { param: 'eventId' },
    );
  }
  // The key follows the add itself, not this answer: an add that outlives its deadline (answered
  // 503) still completes the key, so the sender's retry is a duplicate, not a second update; an
  // add that queued nothing lets the key go, so the retry is accepted.
  const updateId = await queue.enqueue(job, (queued) => {
    settleIdempotencyKey(deps.redis, key, queued).catch(() => undefined);
  });
  ctx.status = 202;
  ctx.body = { ok: true, updateId };
}

/** `GET|POST /api/bots/webhooks/{postbackId}/updateDialog`: check, queue durably, answer. */
export function postbackHandler(deps: PostbackDeps) {
  const queue = new BoundedQueue(deps, deps.enqueueTimeoutMs ?? 800);
  return async (ctx: Context, postbackId: string): Promise<void> => {
    const endpoint = await findEndpoint(deps, postbackId);
    takeRateLimit(ctx, deps, endpoint);
    const request = await readPostback(ctx);
    const job = traced(ctx, await dialogUpdateJob(deps, endpoint, request));
    if (request.eventId !== undefined)
      return queueOnce(ctx, deps, queue, job, request.eventId, {
        endpointId: endpoint.endpointId,
        route: 'updateDialog',
      });
    ctx.status = 202;
    ctx.body = { ok: true, updateId: await queue.enqueue(job) };
  };
}

/** A conversion's own parameters (`clickid`, `status`, `payout`, …) and the rest, read as in updateDialog. */
async function readConversionCall(ctx: Context): Promise<{ conversion: ConversionRequest; request: PostbackRequest }> {
  if (ctx.querystring.length > MAX_REQUEST_BYTES) {
    throw new DomainError(
      'too_large',
      'request_too_large',
      `the query string is larger than ${MAX_REQUEST_BYTES} bytes`,
    );
  }
  const own = new Map<string, string>();
  const rest: Array<[string, string]> = [];
  for (const [name, value] of parseUrlEncoded(ctx.querystring)) {
    if (!CONVERSION_PARAMS.has(name)) rest.push([name, value]);
    else if (!own.has(name)) own.set(name, value);
  }
  let body = ctx.method === 'POST' ? await readParamsBody(ctx) : null;
  // A body value wins over the query's.
  if (Array.isArray(body)) {
    const seen = new Set<string>();
    body = body.filter(([name, value]) => {
      if (!CONVERSION_PARAMS.has(name)) return true;
      if (!seen.has(name)) own.set(name, value);
      seen.add(name);
      return false;
    });
  } else if (body) {
    const object: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(body)) {
      if (!CONVERSION_PARAMS.has(name)) object[name] = value;
      else if (typeof value === 'string' || typeof value === 'number') own.set(name, String(value));
    }
    body = object;
  }
  const conversion = readConversion(own);
  const idempotencyHeader = ctx.get('idempotency-key');
  const request = parsePostback({
    query: [...rest, ['clickid', conversion.clickid]],
    body,
    idempotencyKey: idempotencyHeader === '' ? undefined : idempotencyHeader,
  });
  if (request.chatId !== null) {
    throw new DomainError('invalid', 'invalid_param', 'a conversion names its dialog by clickid only', {
      param: 'chatId',
    });
  }
  for (const param of ['stepId', 'status'] as const) {
    if ((param === 'stepId' ? request.stepRef : request.status) !== undefined) {
      throw new DomainError(
        'invalid',
        'invalid_param',
        `a conversion does not take ${param}: the script's onConversion moves the dialog`,
        { param },
      );
    }
  }
  return { conversion, request };
}

/**
 * `GET|POST /api/bots/webhooks/{postbackId}/conversion` (API.md §5): a network's conversion by
 * click id. A duplicate (same status and payout) is answered 200 and changes nothing; a status move
 * the rules refuse is answered 200 `ignored` and recorded; an unknown click id is a final 404;
 * anything else is queued for the dialog (or waits on its click until it is claimed) and answered
 * 202. Nothing flowpost sends onwards is waited for.
 */
export function conversionHandler(deps: PostbackDeps) {
  const queue = new BoundedQueue(deps, deps.enqueueTimeoutMs ?? 800);
  return async (ctx: Context, postbackId: string): Promise<void> => {
    const endpoint = await findEndpoint(deps, postbackId);
    takeRateLimit(ctx, deps, endpoint);
    const { conversion, request } = await readConversionCall(ctx);
    const job = traced(ctx, await dialogUpdateJob(deps, endpoint, request));
    const move = decideConversionMove(await findConversion(deps.db, endpoint.botId, conversion), conversion);
    if (move.kind === 'duplicate') {
      ctx.status = 200;
      ctx.body = { ok: true, duplicate: true };
      return;
    }
    if (move.kind === 'ignored') {
      await recordIgnoredConversion(deps.db, endpoint.botId, conversion, move.reason);
      ctx.status = 200;
      ctx.body = { ok: true, ignored: move.reason };
      return;
    }
    const withConversion: DialogUpdateJob = { ...job, patch: job.patch!, conversion } as DialogUpdateJob;
    if (request.eventId !== undefined) {
      const scope: IdempotencyScope = { endpointId: endpoint.endpointId, route: 'conversion' };
      return queueOnce(ctx, deps, queue, withConversion, request.eventId, scope);
    }
    ctx.status = 202;
    ctx.body = { ok: true, updateId: await queue.enqueue(withConversion) };
  };
}
