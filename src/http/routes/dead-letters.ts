import type Router from '@koa/router';
import { z } from 'zod';
import { listDeadInputs, reviveDeadInput } from '../../db/dialog-inputs.js';
import { DomainError } from '../../domain/errors.js';
import { CHAT_ID_PATTERN } from '../../domain/postback.js';
import { chatIdParam, parseBody } from '../validation.js';
import { currentBot, type ManagementDeps } from './management-deps.js';

const chatIdText = z.string().regex(CHAT_ID_PATTERN, 'must be an integer').transform(Number);

export const deadLetterListQuery = z.strictObject({
  chatId: chatIdText.optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
});

/**
 * Dialog inputs set aside after failing too often (the dialog went on without them): listed with
 * their error, and put back to be handled again (a run resumes at its first effect not done).
 */
export function registerDeadLetterRoutes(router: Router, deps: ManagementDeps): void {
  router.get('/bots/:botId/dead-letters', async (ctx) => {
    const query = parseBody(deadLetterListQuery, { ...ctx.query });
    const items = await listDeadInputs(deps.db, currentBot(ctx).id, {
      limit: query.limit,
      ...(query.chatId !== undefined ? { chatId: query.chatId } : {}),
    });
    ctx.body = { items };
  });

  router.post('/bots/:botId/dead-letters/:chatId/:seq/retry', async (ctx) => {
    const chatId = chatIdParam(ctx.params.chatId!);
    const seq = /^\d{1,16}$/.test(ctx.params.seq!) ? Number(ctx.params.seq) : Number.NaN;
    if (!Number.isSafeInteger(seq))
      throw new DomainError('invalid', 'invalid_seq', 'seq must be a positive integer', { param: 'seq' });
    const botId = currentBot(ctx).id;
    if (!(await reviveDeadInput(deps.db, { botId, chatId }, seq))) {
      throw new DomainError('not_found', 'unknown_dead_letter', 'no dead input with this chatId and seq', {
        param: 'seq',
      });
    }
    await deps.wakeDialog(botId, chatId);
    ctx.status = 202;
    ctx.body = { ok: true, chatId, seq: String(seq) };
  });
}
