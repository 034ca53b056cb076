import type Router from '@koa/router';
import { z } from 'zod';
import { listDialogMessages } from '../../db/dialog-messages.js';
import { dialogExists } from '../../db/dialogs.js';
import { DomainError, unknownDialogError } from '../../domain/errors.js';
import { chatIdParam } from '../validation.js';
import { currentBot, type ManagementDeps } from './management-deps.js';

const DEFAULT_LIMIT = 50;
const MAX_LIMIT = 200;

/** The transcript's query parameters, as the API description shows them (read by hand below). */
export const transcriptQuerySchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(MAX_LIMIT).default(DEFAULT_LIMIT),
  cursor: z.string().optional().describe('the nextCursor of the previous page'),
});

function limitParam(value: unknown): number {
  if (value === undefined) return DEFAULT_LIMIT;
  const limit = typeof value === 'string' && /^\d{1,4}$/.test(value) ? Number(value) : Number.NaN;
  if (!(limit >= 1 && limit <= MAX_LIMIT))
    throw new DomainError('invalid', 'invalid_limit', `limit must be an integer from 1 to ${MAX_LIMIT}`, {
      param: 'limit',
    });
  return limit;
}

// The cursor is opaque to callers: the id of the last line returned, base64url-encoded.
function encodeCursor(id: string): string {
  return Buffer.from(`m:${id}`).toString('base64url');
}

function cursorParam(value: unknown): string | null {
  if (value === undefined) return null;
  const decoded = typeof value === 'string' ? Buffer.from(value, 'base64url').toString() : '';
  const match = /^m:(\d{1,18})$/.exec(decoded);
  if (!match || typeof value !== 'string' || encodeCursor(match[1]!) !== value)
    throw new DomainError('invalid', 'invalid_cursor', 'cursor is not one this API returned', { param: 'cursor' });
  return match[1]!;
}

export function registerDialogMessageRoutes(router: Router, deps: ManagementDeps): void {
  router.get('/bots/:botId/dialogs/:chatId/messages', async (ctx) => {
    const ref = { botId: currentBot(ctx).id, chatId: chatIdParam(ctx.params.chatId!) };
    const limit = limitParam(ctx.query.limit);
    const afterId = cursorParam(ctx.query.cursor);
    if (!(await dialogExists(deps.db, ref))) throw unknownDialogError();
    // One more than asked says whether there is a next page.
    const lines = await listDialogMessages(deps.db, ref, { afterId, limit: limit + 1 });
    const items = lines.slice(0, limit);
    ctx.body = { items, nextCursor: lines.length > limit ? encodeCursor(items[items.length - 1]!.id) : null };
  });
}
