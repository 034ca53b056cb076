import type Router from '@koa/router';
import { z } from 'zod';
import { listFields, upsertField } from '../../db/bots.js';
import { FIELD_TYPES } from '../../domain/field-types.js';
import { DomainError } from '../../domain/errors.js';
import { keyProblem } from '../../domain/keys.js';
import { readJsonBody } from '../body.js';
import { parseBody } from '../validation.js';
import { currentBot, type ManagementDeps } from './management-deps.js';

export const fieldSchema = z
  .strictObject({
    name: z.string().trim().min(1).max(200),
    type: z.enum(FIELD_TYPES),
    options: z.array(z.string().trim().min(1).max(200)).max(200).optional(),
  })
  .refine((f) => !((f.type === 'select' || f.type === 'multiselect') && !f.options?.length), {
    message: 'select and multiselect fields need options',
    path: ['options'],
  });

export function registerFieldRoutes(router: Router, deps: ManagementDeps): void {
  router.put('/bots/:botId/fields/:key', async (ctx) => {
    const bot = currentBot(ctx);
    const key = ctx.params.key!;
    const problem = keyProblem(key);
    if (problem) throw new DomainError('invalid', 'invalid_key', `field key ${problem}`, { param: 'key' });
    const input = parseBody(fieldSchema, await readJsonBody(ctx));
    const field = { key, name: input.name, type: input.type, options: input.options ?? null };
    await upsertField(deps.db, bot.id, field);
    await deps.invalidate({ kind: 'bot', id: bot.id });
    ctx.body = field;
  });

  router.get('/bots/:botId/fields', async (ctx) => {
    ctx.body = { fields: await listFields(deps.db, currentBot(ctx).id) };
  });
}
