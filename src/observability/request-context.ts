/**
 * Every web request's id, logger, metrics and access log line. The request id is the caller's
 * `X-Request-Id` when it is a plausible id, else a new one; it is answered in `X-Request-Id`, carried
 * by the request's log lines (`requestId`) and by the jobs it queues, so the worker's lines for that
 * job carry it too.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Context, Next } from 'koa';
import type { Logger } from '../config/log.js';
import { httpDuration, httpRequests } from './metrics.js';

/** What the request context puts on `ctx.state`. */
export interface RequestState {
  requestId: string;
  /** The process logger bound to this request's id. */
  log: Logger;
  /** The route's name for metrics and the access log, set by the route when it matched. */
  route?: RouteName;
}

export type RouteName =
  | 'updateDialog'
  | 'conversion'
  | 'telegram_webhook'
  | 'click_redirect'
  | 'management'
  | 'healthz'
  | 'readyz'
  | 'metrics'
  | 'queue_dashboard'
  | 'console'
  | 'unmatched';

/** `ctx.state` of a request; its logger is bound when first used (most ingest requests log nothing). */
class RequestStateOf implements RequestState {
  route?: RouteName;
  #log: Logger | undefined;

  constructor(
    readonly requestId: string,
    private readonly processLog: Logger,
  ) {}

  get log(): Logger {
    return (this.#log ??= this.processLog.child({ requestId: this.requestId }));
  }
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** A prefix random per process, and a counter: ids unique across processes, cheap on every request. */
const ID_PREFIX = randomBytes(6).toString('hex');
let idCounter = 0;

/** The caller's request id when it is 1–128 characters of [A-Za-z0-9._:-], else a new one. */
export function requestIdOf(header: string | undefined): string {
  return header && REQUEST_ID.test(header) ? header : `${ID_PREFIX}-${(++idCounter).toString(36)}`;
}

/**
 * The request counter's and latency histogram's children, by route, method and status: prom-client
 * hashes a labels object on every call, and this runs on every postback.
 */
const requestCounters = new Map<string, { inc(): void }>();
const requestTimers = new Map<string, { observe(seconds: number): void }>();

function recordRequest(route: RouteName, method: string, status: number, seconds: number): void {
  const timerKey = `${route} ${method}`;
  const counterKey = `${timerKey} ${status}`;
  let counter = requestCounters.get(counterKey);
  if (!counter) requestCounters.set(counterKey, (counter = httpRequests.labels(route, method, String(status))));
  let timer = requestTimers.get(timerKey);
  if (!timer) requestTimers.set(timerKey, (timer = httpDuration.labels(route, method)));
  counter.inc();
  timer.observe(seconds);
}

const METHODS = new Set(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS']);

/** A bounded method label: the usual ones, or `other`. */
export function methodLabel(method: string): string {
  return METHODS.has(method) ? method : 'other';
}

/** A route name for a request its route did not name: by path prefix, never the raw path. */
export function routeOf(path: string): RouteName {
  if (path.startsWith('/api/v1/')) return 'management';
  if (path === '/admin/queues' || path.startsWith('/admin/queues/')) return 'queue_dashboard';
  return 'unmatched';
}

/** Routes at ingest volume: their successful answers are logged at debug (see requestContext). */
const INGEST_ROUTES: ReadonlySet<RouteName> = new Set(['updateDialog', 'conversion', 'telegram_webhook']);

/**
 * The outermost middleware: request id, the request's logger, and once answered, the request's
 * metrics and one access log line (method, route, status, ms, requestId). The line is at info,
 * except a 2xx of an ingest route (postbacks, conversions, Telegram updates), at debug: those come
 * by the thousand a second, /metrics counts and times them, and writing the line (redaction, a
 * synchronous write) measured several times the CPU of this middleware's id, metrics and timing.
 */
export function requestContext(log: Logger) {
  return async (ctx: Context, next: Next): Promise<void> => {
    const started = performance.now();
    const requestId = requestIdOf(ctx.get('x-request-id') || undefined);
    const state = new RequestStateOf(requestId, log);
    ctx.state = state;
    ctx.set('X-Request-Id', requestId);
    try {
      await next();
    } finally {
      const seconds = (performance.now() - started) / 1000;
      const route = state.route ?? routeOf(ctx.path);
      const method = methodLabel(ctx.method);
      const status = ctx.status;
      recordRequest(route, method, status, seconds);
      const line = { method: ctx.method, route, status, ms: Math.round(seconds * 10_000) / 10 };
      if (status >= 300 || !INGEST_ROUTES.has(route)) state.log.info(line, 'request');
      else if (log.isLevelEnabled('debug')) state.log.debug(line, 'request');
    }
  };
}

/** `job` with the request's id, so the worker's log lines for it carry the same `requestId`. */
export function traced<T extends object>(ctx: Context, job: T): T {
  const requestId = (ctx.state as Partial<RequestState>).requestId;
  return requestId ? { ...job, requestId } : job;
}

/** The request's logger (bound to its id), or `fallback` outside a request context. */
export function requestLog(ctx: Context, fallback: Logger): Logger {
  return (ctx.state as Partial<RequestState>).log ?? fallback;
}
