import { randomUUID } from 'node:crypto';
import type Router from '@koa/router';
import type { Knex } from 'knex';
import { lockBot } from '../../db/bots.js';
import { listStepRefs, listSteps, replaceScript, scriptHead } from '../../db/script-steps.js';
import { DomainError } from '../../domain/errors.js';
import { assignStepIds, validateScript, type StepId } from '../../domain/script/index.js';
import { checkTemplate } from '../../templates/index.js';
import { readJsonBody } from '../body.js';
import { refuseUnstorableText } from '../validation.js';
import { currentBot, type ManagementDeps } from './management-deps.js';

/**
 * Validates a script document and stores it as the bot's script (PUT …/script and the console's
 * script page): 422 `invalid_script` with every problem in `details.problems`, else the step ids.
 */
export async function saveScript(deps: ManagementDeps, botId: string, document: unknown): Promise<StepId[]> {
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
    await lockBot(trx, botId);
    const existing = await listStepRefs(trx, botId);
    const ids = assignStepIds(script, new Map(existing.map((row) => [row.key, row.id])), randomUUID);
    await replaceScript(
      trx,
      botId,
      script.start,
      script.steps.map((step, i) => ({ id: ids[i]!.id, key: step.key, definition: step })),
      script.onConversion ?? null,
    );
    return ids;
  });
  await deps.invalidate({ kind: 'bot', id: botId });
  return steps;
}

/** The bot's script as its document (what GET …/script answers). */
export async function scriptDocument(db: Knex, botId: string): Promise<Record<string, unknown>> {
  const [steps, head] = await Promise.all([listSteps(db, botId), scriptHead(db, botId)]);
  return {
    start: head.start,
    steps: steps.map((step) => ({ id: step.id, ...step.definition })),
    ...(head.onConversion ? { onConversion: head.onConversion } : {}),
  };
}

export function registerScriptRoutes(router: Router, deps: ManagementDeps): void {
  router.put('/bots/:botId/script', async (ctx) => {
    const steps = await saveScript(deps, currentBot(ctx).id, await readJsonBody(ctx));
    ctx.body = { steps };
  });

  router.get('/bots/:botId/script', async (ctx) => {
    ctx.body = await scriptDocument(deps.db, currentBot(ctx).id);
  });
}
