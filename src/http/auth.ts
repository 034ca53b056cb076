import { createHash, timingSafeEqual } from 'node:crypto';
import type { Context, Next } from 'koa';
import { sendError } from './errors.js';

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** Bearer authentication against one key, compared in constant time (digests have equal length). */
export function bearerAuth(apiKey: string) {
  const expected = digest(apiKey);
  return async (ctx: Context, next: Next): Promise<void> => {
    const header = ctx.get('authorization');
    const match = /^Bearer\s+(.+)$/i.exec(header);
    if (!match || !timingSafeEqual(digest(match[1]!.trim()), expected)) {
      ctx.set('WWW-Authenticate', 'Bearer');
      sendError(ctx, 401, 'unauthorized', 'a valid "Authorization: Bearer <ADMIN_API_KEY>" header is required');
      return;
    }
    await next();
  };
}
