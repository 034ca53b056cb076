import type { Context, Next } from 'koa';
import { isDatabaseUnavailable } from '../db/connection.js';
import { InputError } from '../domain/input-error.js';
import type { Logger } from '../config/log.js';

/** The queue (Redis) or the database could not take the work now: the client should retry. */
export class ServiceUnavailableError extends Error {
  constructor(
    readonly code: 'queue_unavailable' | 'database_unavailable' | 'telegram_unavailable',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ServiceUnavailableError';
  }
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

/** Maps every failure to the JSON error shape; nothing escapes as an HTML page or a stack trace. */
export function errorMiddleware(log: Logger) {
  return async (ctx: Context, next: Next): Promise<void> => {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) sendError(ctx, 404, 'not_found', 'no such route');
      if (ctx.status === 405 && !ctx.body) sendError(ctx, 405, 'method_not_allowed', `${ctx.method} is not allowed here`);
    } catch (error) {
      if (error instanceof InputError) {
        if (error.status === 429 && !ctx.response.get('Retry-After')) ctx.set('Retry-After', '1');
        sendError(ctx, error.status, error.code, error.message, error.param, error.details);
        return;
      }
      if (error instanceof ServiceUnavailableError || isDatabaseUnavailable(error)) {
        const code = error instanceof ServiceUnavailableError ? error.code : 'database_unavailable';
        log.warn({ err: error, path: ctx.path }, 'service unavailable');
        ctx.set('Retry-After', '5');
        sendError(ctx, 503, code, 'temporarily unable to accept this request; retry later');
        return;
      }
      log.error({ err: error, method: ctx.method, path: ctx.path }, 'request failed');
      sendError(ctx, 500, 'internal_error', 'internal error');
    }
  };
}
