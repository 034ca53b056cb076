import type { Context, Next } from 'koa';
import { isDatabaseUnavailable } from '../db/connection.js';
import { DomainError, type DomainErrorKind } from '../domain/errors.js';
import type { Logger } from '../config/log.js';

/** The HTTP status each kind of refusal is answered with (the contract: /api docs, API.md). */
const STATUS_OF_KIND: Record<DomainErrorKind, number> = {
  invalid: 400,
  unauthorized: 401,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  too_large: 413,
  unsupported_media_type: 415,
  unprocessable: 422,
  rate_limited: 429,
  unavailable: 503,
};

export function statusOf(kind: DomainErrorKind): number {
  return STATUS_OF_KIND[kind];
}

export function sendError(
  ctx: Context,
  status: number,
  code: string,
  message: string,
  param?: string,
  details?: Record<string, unknown>,
): void {
  ctx.status = status;
  ctx.body = { ok: false, error: { code, message, ...(param === undefined ? {} : { param }), ...details } };
}

/** The queue (Redis) or the database could not take the work now: 503, and the client should retry. */
function sendUnavailable(ctx: Context, code: string): void {
  if (!ctx.response.get('Retry-After')) ctx.set('Retry-After', '5');
  sendError(ctx, 503, code, 'temporarily unable to accept this request; retry later');
}

/**
 * Maps every failure to the JSON error shape; nothing escapes as an HTML page or a stack trace.
 * `loggerOf` gives the request's logger, asked for only when there is something to log.
 */
export function errorMiddleware(loggerOf: (ctx: Context) => Logger) {
  return async (ctx: Context, next: Next): Promise<void> => {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) sendError(ctx, 404, 'not_found', 'no such route');
      if (ctx.status === 405 && !ctx.body)
        sendError(ctx, 405, 'method_not_allowed', `${ctx.method} is not allowed here`);
    } catch (error) {
      if (error instanceof DomainError && error.kind !== 'unavailable') {
        if (error.kind === 'rate_limited' && !ctx.response.get('Retry-After')) ctx.set('Retry-After', '1');
        sendError(ctx, statusOf(error.kind), error.code, error.message, error.param, error.details);
        return;
      }
      if (error instanceof DomainError || isDatabaseUnavailable(error)) {
        loggerOf(ctx).warn({ err: error, path: ctx.path }, 'service unavailable');
        sendUnavailable(ctx, error instanceof DomainError ? error.code : 'database_unavailable');
        return;
      }
      loggerOf(ctx).error({ err: error, method: ctx.method, path: ctx.path }, 'request failed');
      sendError(ctx, 500, 'internal_error', 'internal error');
    }
  };
}
