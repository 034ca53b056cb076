import type Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { keySchema } from '../../domain/keys.js';
import { performOperatorAction, type OperatorAction } from '../../operator/dialog-actions.js';
import type { RequestState } from '../../observability/request-context.js';
import { readJsonBody } from '../body.js';
import { chatIdParam, parseBody } from '../validation.js';
import { currentBot, type ManagementDeps } from './management-deps.js';

/** Longest operator message: one Telegram message (4096 characters). */
const MAX_OPERATOR_TEXT = 4096;
/** Most fields, or tags, one operator update may name. */
const MAX_KEYS_PER_UPDATE = 100;

// eslint-disable-next-line no-control-regex -- control characters are what a tag may not hold
const PRINTABLE = /^[^\u0000-\u001f\u007f]+$/;
const tag = z.string().min(1).max(64).regex(PRINTABLE, 'must be printable characters');

export const releaseSchema = z.strictObject({ stepId: z.string().min(1).max(100).optional() });

export const operatorMessageSchema = z.strictObject({
  text: z
    .string()
    .max(MAX_OPERATOR_TEXT)
    .refine((text) => text.trim() !== '', 'must not be empty'),
});

const fieldValue = z.union([z.string().max(4096), z.number(), z.boolean(), z.null(), z.array(z.string().max(4096))]);

export const dialogUpdateSchema = z.strictObject({
  fields: z
    .record(keySchema, fieldValue)
    .refine((fields) => Object.keys(fields).length <= MAX_KEYS_PER_UPDATE, `at most ${MAX_KEYS_PER_UPDATE} fields`)
    .optional(),
  addTags: z.array(tag).max(MAX_KEYS_PER_UPDATE).optional(),
  removeTags: z.array(tag).max(MAX_KEYS_PER_UPDATE).optional(),
});

/**
 * The operator's hand on a dialog (API.md §3): take over, hand back (optionally at a step), write
 * to the user, set fields and tags. Each answers 202 once queued as an input of the dialog, in its
 * one order; `seq` is its place in that order.
 */
export function registerOperatorRoutes(router: Router, deps: ManagementDeps): void {
  const act = async (ctx: Context, action: OperatorAction): Promise<void> => {
    const chatId = chatIdParam((ctx.params as Record<string, string>).chatId!);
    const { requestId } = ctx.state as RequestState;
    const { seq } = await performOperatorAction(deps, currentBot(ctx), chatId, action, requestId);
    ctx.status = 202;
    ctx.body = { ok: true, seq };
  };

  router.post('/bots/:botId/dialogs/:chatId/takeover', (ctx) => act(ctx, { kind: 'takeover' }));

  router.post('/bots/:botId/dialogs/:chatId/release', async (ctx) => {
    const body = parseBody(releaseSchema, await readJsonBody(ctx, { optional: true }));
    await act(ctx, { kind: 'release', ...(body.stepId !== undefined ? { stepId: body.stepId } : {}) });
  });

  router.post('/bots/:botId/dialogs/:chatId/messages', async (ctx) => {
    const body = parseBody(operatorMessageSchema, await readJsonBody(ctx));
    await act(ctx, { kind: 'message', text: body.text });
  });

  router.patch('/bots/:botId/dialogs/:chatId', async (ctx) => {
    const body = parseBody(dialogUpdateSchema, await readJsonBody(ctx));
    await act(ctx, {
      kind: 'update',
      ...(body.fields ? { fields: body.fields } : {}),
      ...(body.addTags ? { addTags: body.addTags } : {}),
      ...(body.removeTags ? { removeTags: body.removeTags } : {}),
    });
  });
}
