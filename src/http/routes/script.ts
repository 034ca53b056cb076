import { randomUUID } from 'node:crypto';
import type Router from '@koa/router';
import { listSteps, replaceScript } from '../../db/script-steps.js';
import { InputError } from '../../domain/input-error.js';
import { assignStepIds, validateScript } from '../../domain/script/index.js';
import { checkTemplate } from '../../templates/index.js';
import { readJsonBody } from '../body.js';
import { currentBot, type ManagementDeps } from './management-deps.js';

export function registerScriptRoutes(router: Router, deps: ManagementDeps): void {
  router.put('/bots/:botId/script', async (ctx) => {
    const bot = currentBot(ctx);
    const result = validateScript(await readJsonBody(ctx), { checkTemplate });
    if (!result.ok) {
      const count = result.problems.length;
      throw new InputError(422, 'invalid_script', `the script has ${count} problem${count === 1 ? '' : 's'}`, undefined, {
        problems: result.problems,
      });
    }
    const script = result.script;
    const steps = await deps.db.transaction(async (trx) => {
      await trx('bots').where({ id: bot.id }).forUpdate().first('id');
      const existing = await trx('script_steps').where({ bot_id: bot.id }).select('key', 'id');
      const ids = assignStepIds(script, new Map(existing.map((row: { key: string; id: string }) => [row.key, row.id])), randomUUID);
      await replaceScript(
        trx,
        bot.id,
        script.start,
        script.steps.map((step, i) => ({ id: ids[i]!.id, key: step.key, definition: step })),
      );
      return ids;
    });
    await deps.invalidate({ kind: 'bot', id: bot.id });
    ctx.body = { steps };
  });

  router.get('/bots/:botId/script', async (ctx) => {
    const bot = currentBot(ctx);
    const [steps, row] = await Promise.all([
      listSteps(deps.db, bot.id),
      deps.db('bots').where({ id: bot.id }).first('script_start'),
    ]);
    ctx.body = { start: row?.script_start ?? null, steps: steps.map((step) => ({ id: step.id, ...step.definition })) };
  });
}
