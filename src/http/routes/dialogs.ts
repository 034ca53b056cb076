import type Router from '@koa/router';
import { listDialogConversions } from '../../db/conversions.js';
import { findDialog } from '../../db/dialogs.js';
import { DomainError } from '../../domain/errors.js';
import { currentBot, type ManagementDeps } from './management-deps.js';

export function registerDialogRoutes(router: Router, deps: ManagementDeps): void {
  router.get('/bots/:botId/dialogs/:chatId', async (ctx) => {
    const text = ctx.params.chatId!;
    const chatId = /^-?\d{1,16}$/.test(text) ? Number(text) : Number.NaN;
    if (!Number.isSafeInteger(chatId))
      throw new DomainError('invalid', 'invalid_chat_id', 'chatId must be an integer', { param: 'chatId' });
    const dialog = await findDialog(deps.db, currentBot(ctx).id, chatId);
    if (!dialog)
      throw new DomainError('not_found', 'unknown_dialog', 'no dialog with this chatId', { param: 'chatId' });
    ctx.body = { ...dialog, conversions: await listDialogConversions(deps.db, currentBot(ctx).id, chatId) };
  });
}
