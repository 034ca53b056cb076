import { createHash, timingSafeEqual } from 'node:crypto';
import type { Context, Next } from 'koa';
import { sendError } from './errors.js';

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** Constant-time comparison: digests have equal length whatever was given. */
function sameKey(given: string | null, expected: Buffer): boolean {
  return given !== null && timingSafeEqual(digest(given), expected);
}

/** The token of an `Authorization: Bearer <token>` header, or null. */
function bearerToken(header: string | undefined): string | null {
  const match = /^Bearer\s+(.+)$/i.exec(header ?? '');
  return match ? match[1]!.trim() : null;
}

/** The password of an `Authorization: Basic base64(user:password)` header (any user), or null. */
function basicPassword(header: string | undefined): string | null {
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? '');
  if (!match) return null;
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? null : decoded.slice(colon + 1);
}

/** Bearer authentication against one key, compared in constant time (digests have equal length). */
export function bearerAuth(apiKey: string) {
  const expected = digest(apiKey);
  return async (ctx: Context, next: Next): Promise<void> => {
    if (!sameKey(bearerToken(ctx.get('authorization')), expected)) {
      ctx.set('WWW-Authenticate', 'Bearer');
      sendError(ctx, 401, 'unauthorized', 'a valid "Authorization: Bearer <ADMIN_API_KEY>" header is required');
      return;
    }
    await next();
  };
}

/**
 * The admin key as a Bearer token, or as the password of HTTP Basic authentication (any user name):
 * a browser cannot send a Bearer header to a dashboard, but prompts for Basic credentials.
 */
export function dashboardAuth(apiKey: string) {
  const expected = digest(apiKey);
  return async (ctx: Context, next: Next): Promise<void> => {
    const header = ctx.get('authorization');
    if (!sameKey(bearerToken(header), expected) && !sameKey(basicPassword(header), expected)) {
      ctx.set('WWW-Authenticate', 'Basic realm="flowpost"');
      sendError(
        ctx,
        401,
        'unauthorized',
        'the admin key is required: "Authorization: Bearer <ADMIN_API_KEY>", or Basic authentication with it as the password',
      );
      return;
    }
    await next();
  };
}

/**
 * Whether an Authorization header carries `token` as a Bearer token; any header does when no token
 * is set. For /metrics, which a process may serve outside Koa.
 */
export function metricsAuthorized(header: string | undefined, token: string | undefined): boolean {
  if (token === undefined || token === '') return true;
  return sameKey(bearerToken(header), digest(token));
}

export const METRICS_UNAUTHORIZED = {
  ok: false,
  error: { code: 'unauthorized', message: 'a valid "Authorization: Bearer <METRICS_TOKEN>" header is required' },
} as const;
