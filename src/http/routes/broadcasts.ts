import { randomUUID } from 'node:crypto';
import type Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import {
  findBroadcast,
  insertBroadcast,
  listBroadcasts,
  keptCounts,
  moveBroadcast,
  recipientCountsOf,
  type BroadcastRecord,
  type BroadcastState,
  type RecipientCounts,
  type StoredAudience,
} from '../../db/broadcasts.js';
import type { BotRecord } from '../../db/bots.js';
import { findStepRef, listStepRefs } from '../../db/script-steps.js';
import type { BroadcastButton, BroadcastContent } from '../../domain/broadcasts/content.js';
import { DomainError } from '../../domain/errors.js';
import { keySchema } from '../../domain/keys.js';
import { checkTemplate } from '../../templates/index.js';
import { readJsonBody } from '../body.js';
import { parseBody, UUID_PATTERN } from '../validation.js';
import { CAMPAIGN_ID_PATTERN } from './clicks.js';
import { currentBot, type ManagementDeps } from './management-deps.js';

const MAX_TEXT = 4096;
const MAX_BUTTONS = 10;

/** The dialogs a broadcast goes to: the listing's filters (API.md §3); only started dialogs in `auto` are ever mailed. */
const broadcastAudienceSchema = z.strictObject({
  status: z.literal('auto').optional().describe('only dialogs in auto are mailed; manual and blocked never'),
  step: z.string().min(1).max(100).optional().describe("the step's id or key"),
  tags: z.array(keySchema).max(20).optional().describe('dialogs with every tag given'),
  fields: z.record(keySchema, z.string().max(4096)).optional().describe('custom field KEY equals the value'),
  campaign: z.string().regex(CAMPAIGN_ID_PATTERN).optional().describe('dialogs started from this campaign'),
  q: z.string().max(200).optional().describe('searches name and username'),
  updatedSince: z.union([z.iso.date(), z.iso.datetime({ offset: true })]).optional(),
});

const buttonSchema = z.union([
  z.strictObject({ text: z.string().min(1).max(200), url: z.string().min(1).max(2048) }),
  z.strictObject({ text: z.string().min(1).max(200), next: z.string().min(1).max(100) }),
]);

export const createBroadcastSchema = z
  .strictObject({
    audience: broadcastAudienceSchema.default({}),
    text: z.string().min(1).max(MAX_TEXT).optional().describe('a template (API.md §2), rendered for each recipient'),
    buttons: z.array(buttonSchema).max(MAX_BUTTONS).optional(),
    stepId: z.string().min(1).max(100).optional().describe('a step (id or key) each recipient’s dialog moves to'),
    startAt: z.iso.datetime({ offset: true }).optional().describe('when to start; default now'),
  })
  .refine((body) => (body.text === undefined) !== (body.stepId === undefined), {
    message: 'give either text or stepId',
    path: ['text'],
  })
  .refine((body) => body.buttons === undefined || body.text !== undefined, {
    message: 'buttons go with a text',
    path: ['buttons'],
  });

/** The bot's broadcast of this id (`:id`), or a 404 naming `id`. Shared by the API and the console. */
export async function findBroadcastOf(deps: ManagementDeps, botId: string, id: string): Promise<BroadcastRecord> {
  const found = UUID_PATTERN.test(id) ? await findBroadcast(deps.db, botId, id.toLowerCase()) : null;
  if (!found) throw new DomainError('not_found', 'unknown_broadcast', 'no broadcast with this id', { param: 'id' });
  return found;
}

function broadcastOf(ctx: Context, deps: ManagementDeps): Promise<BroadcastRecord> {
  return findBroadcastOf(deps, currentBot(ctx).id, String((ctx.params as Record<string, string>).id));
}

/** A step of the bot's script by id or key, or a 422 naming `param`. */
function resolveStep(
  steps: Array<{ id: string; key: string }>,
  ref: string,
  param: string,
): { id: string; key: string } {
  const step = findStepRef(steps, ref);
  if (!step)
    throw new DomainError('unprocessable', 'unknown_step', `${param}: no step "${ref}" in the script`, { param });
  return step;
}

function templateProblem(source: string, mode: 'html' | 'plain', param: string): void {
  const problem = checkTemplate(source, mode);
  if (problem) throw new DomainError('unprocessable', 'invalid_template', `${param}: ${problem}`, { param });
}

/** A broadcast with its progress, as the API shows it (and the console reads it). */
export interface BroadcastProgress {
  id: string;
  state: BroadcastState;
  audience: StoredAudience;
  text?: string;
  buttons?: BroadcastButton[];
  stepId?: string;
  stepKey?: string;
  startAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  createdAt: string;
  planned: number | null;
  sent: number;
  blocked: number;
  failed: number;
  skipped: number;
  interrupted: number;
  remaining: number | null;
  estimatedEnd: string | null;
}

/** Broadcasts with their progress: the recipients of those not done are counted in one query. */
export async function broadcastProgresses(
  deps: ManagementDeps,
  broadcasts: readonly BroadcastRecord[],
): Promise<BroadcastProgress[]> {
  const counted = await recipientCountsOf(
    deps.db,
    broadcasts.filter((broadcast) => !broadcast.finalCounts).map((broadcast) => broadcast.id),
  );
  const now = Date.now();
  return broadcasts.map((broadcast) =>
    progressOf(broadcast, broadcast.finalCounts ? keptCounts(broadcast.finalCounts) : counted.get(broadcast.id)!, now),
  );
}

/** A broadcast with its progress. */
async function broadcastProgress(deps: ManagementDeps, broadcast: BroadcastRecord): Promise<BroadcastProgress> {
  const [progress] = await broadcastProgresses(deps, [broadcast]);
  return progress!;
}

/** A broadcast's progress from its recipients' counts at `now`; the estimated end from the pace so far. */
export function progressOf(broadcast: BroadcastRecord, counts: RecipientCounts, now: number): BroadcastProgress {
  const remaining = counts.pending + counts.sending;
  const handled = counts.sent + counts.blocked + counts.failed + counts.skipped + counts.interrupted;
  let estimatedEnd: string | null = null;
  if (broadcast.state === 'running' && broadcast.startedAt && handled > 0 && remaining > 0) {
    const elapsedMs = now - broadcast.startedAt.getTime();
    estimatedEnd = new Date(now + (elapsedMs / handled) * remaining).toISOString();
  }
  const content = broadcast.content;
  return {
    id: broadcast.id,
    state: broadcast.state,
    audience: broadcast.audience,
    ...(content.kind === 'message'
      ? { text: content.text, buttons: content.buttons }
      : { stepId: content.stepId, stepKey: content.stepKey }),
    startAt: broadcast.startAt.toISOString(),
    startedAt: broadcast.startedAt?.toISOString() ?? null,
    finishedAt: broadcast.finishedAt?.toISOString() ?? null,
    createdAt: broadcast.createdAt.toISOString(),
    planned: broadcast.planned,
    sent: counts.sent,
    blocked: counts.blocked,
    failed: counts.failed,
    skipped: counts.skipped,
    interrupted: counts.interrupted,
    remaining: broadcast.planned === null ? null : remaining,
    estimatedEnd,
  };
}

/**
 * Stores a broadcast for `bot` (its steps and templates checked: 422 naming what is wrong) and
 * queues its run for its start time. Shared by the API and the console.
 */
export async function createBroadcast(
  deps: ManagementDeps,
  bot: BotRecord,
  body: z.infer<typeof createBroadcastSchema>,
): Promise<BroadcastRecord> {
  const steps = await listStepRefs(deps.db, bot.id);
  const { step, campaign, updatedSince, ...filters } = body.audience;
  const audience: StoredAudience = {
    ...filters,
    ...(step !== undefined ? { stepId: resolveStep(steps, step, 'audience.step').id } : {}),
    ...(campaign !== undefined ? { campaignId: campaign } : {}),
    ...(updatedSince !== undefined ? { updatedSince: new Date(updatedSince).toISOString() } : {}),
  };
  let content: BroadcastContent;
  if (body.stepId !== undefined) {
    const target = resolveStep(steps, body.stepId, 'stepId');
    content = { kind: 'step', stepId: target.id, stepKey: target.key };
  } else {
    templateProblem(body.text!, 'html', 'text');
    const buttons: BroadcastButton[] = (body.buttons ?? []).map((button, index) => {
      templateProblem(button.text, 'plain', `buttons.${index}.text`);
      if ('url' in button) {
        templateProblem(button.url, 'plain', `buttons.${index}.url`);
        return { text: button.text, url: button.url };
      }
      return { text: button.text, stepId: resolveStep(steps, button.next, `buttons.${index}.next`).id };
    });
    content = { kind: 'message', text: body.text!, buttons };
  }
  const startAt = body.startAt ? new Date(body.startAt) : new Date();
  const broadcast = await insertBroadcast(deps.db, { id: randomUUID(), botId: bot.id, audience, content, startAt });
  // Stored is enough: were the queue unreachable, the workers' sweeper starts it all the same.
  await deps.queueBroadcast(broadcast.id, Math.max(0, startAt.getTime() - Date.now())).catch(() => undefined);
  return broadcast;
}

/** What pause, resume and cancel do: the states each may start from, and where each leads. */
const MOVES = {
  pause: { from: ['scheduled', 'running'], to: () => 'paused' },
  // A broadcast paused before it started goes back to waiting for its start time.
  resume: { from: ['paused'], to: (b: BroadcastRecord) => (b.startedAt ? 'running' : 'scheduled') },
  cancel: { from: ['scheduled', 'running', 'paused'], to: () => 'cancelled' },
} as const satisfies Record<
  string,
  { from: readonly BroadcastState[]; to: (broadcast: BroadcastRecord) => BroadcastState }
>;

export type BroadcastAction = keyof typeof MOVES;
export const BROADCAST_ACTIONS = Object.keys(MOVES) as BroadcastAction[];

/** Pauses, resumes or cancels a broadcast (409 when its state does not allow it); a resume queues its run. */
export async function actOnBroadcast(
  deps: ManagementDeps,
  broadcast: BroadcastRecord,
  action: BroadcastAction,
): Promise<BroadcastRecord> {
  const move = MOVES[action];
  // The states `action` may start from, not only the one just read: a pause racing the broadcast's
  // start (scheduled → running) still pauses it.
  const moved = await moveBroadcast(deps.db, broadcast.id, move.from, move.to(broadcast));
  if (!moved) {
    const current = (await findBroadcast(deps.db, broadcast.botId, broadcast.id)) ?? broadcast;
    throw new DomainError('conflict', 'invalid_state', `a ${current.state} broadcast cannot be told to ${action}`, {
      param: 'id',
    });
  }
  if (action === 'resume') {
    // Stored is enough: were the queue unreachable, the workers' sweeper runs it all the same.
    await deps.queueBroadcast(moved.id, Math.max(0, moved.startAt.getTime() - Date.now())).catch(() => undefined);
  }
  return moved;
}

/**
 * Broadcasts (API.md §3): a message, or a step, for every dialog of an audience taken when the
 * broadcast starts. Sent by the workers at the bot's spare rate (live messages go first), each
 * recipient at most once; paused, resumed and cancelled here.
 */
export function registerBroadcastRoutes(router: Router, deps: ManagementDeps): void {
  router.post('/bots/:botId/broadcasts', async (ctx) => {
    const broadcast = await createBroadcast(
      deps,
      currentBot(ctx),
      parseBody(createBroadcastSchema, await readJsonBody(ctx)),
    );
    ctx.status = 201;
    ctx.body = await broadcastProgress(deps, broadcast);
  });

  router.get('/bots/:botId/broadcasts', async (ctx) => {
    const items = await listBroadcasts(deps.db, currentBot(ctx).id, 100);
    ctx.body = { items: await broadcastProgresses(deps, items) };
  });

  router.get('/bots/:botId/broadcasts/:id', async (ctx) => {
    ctx.body = await broadcastProgress(deps, await broadcastOf(ctx, deps));
  });

  for (const action of BROADCAST_ACTIONS) {
    router.post(`/bots/:botId/broadcasts/:id/${action}`, async (ctx) => {
      const moved = await actOnBroadcast(deps, await broadcastOf(ctx, deps), action);
      ctx.body = await broadcastProgress(deps, moved);
    });
  }
}
