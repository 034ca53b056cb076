import { randomUUID } from 'node:crypto';
import type Router from '@koa/router';
import { lockBot } from '../../db/bots.js';
import { listStepRefs, listSteps, replaceScript, scriptHead } from '../../db/script-steps.js';
import { DomainError } from '../../domain/errors.js';
import { assignStepIds, validateScript } from '../../domain/script/index.js';
import { checkTemplate } from '../../templates/index.js';
import { readJsonBody } from '../body.js';
import { refuseUnstorableText } from '../validation.js';
import { currentBot, type ManagementDeps } from './management-deps.js';

export function registerScriptRoutes(router: Router, deps: ManagementDeps): void {
  router.put('/bots/:botId/script', async (ctx) => {
    const bot = currentBot(ctx);
    const document = await readJsonBody(ctx);
    refuseUnstorableText(document);
    const result = validateScript(document, { checkTemplate });
    if (!result.ok) {
      const count = result.problems.length;
      throw new DomainError(
        'unprocessable',
        'invalid_script',
        `the script has ${count} problem${count === 1 ? '' : 's'}`,
        {
          details: { problems: result.problems },
        },
      );
    }
    const script = result.script;
    const steps = await deps.db.transaction(async (trx) => {
      await lockBot(trx, bot.id);
      const existing = await listStepRefs(trx, bot.id);
      const ids = assignStepIds(script, new Map(existing.map((row) => [row.key, row.id])), randomUUID);
      await replaceScript(
        trx,
        bot.id,
        script.start,
        script.steps.map((step, i) => ({ id: ids[i]!.id, key: step.key, definition: step })),
        script.onConversion ?? null,
      );
      return ids;
    });
    await deps.invalidate({ kind: 'bot', id: bot.id });
    ctx.body = { steps };
  });

  router.get('/bots/:botId/script', async (ctx) => {
    const bot = currentBot(ctx);
    const [steps, head] = await Promise.all([listSteps(deps.db, bot.id), scriptHead(deps.db, bot.id)]);
    ctx.body = {
      start: head.start,
      steps: steps.map((step) => ({ id: step.id, ...step.definition })),
      ...(head.onConversion ? { onConversion: head.onConversion } : {}),
    };
  });
}
