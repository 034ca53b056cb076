import type Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { listConversionsOfDialogs, listDialogConversions } from '../../db/conversions.js';
import { findDialog, listDialogs, type DialogFilter, type DialogListPosition } from '../../db/dialogs.js';
import { listStepRefs } from '../../db/script-steps.js';
import { DIALOG_STATUSES, parseStatus } from '../../domain/dialog.js';
import { DomainError, unknownDialogError } from '../../domain/errors.js';
import { keyProblem, keySchema } from '../../domain/keys.js';
import { chatIdParam, refuseUnstorableText, UUID_PATTERN } from '../validation.js';
import { CAMPAIGN_ID_PATTERN } from './clicks.js';
import { currentBot, type ManagementDeps } from './management-deps.js';

const DEFAULT_LIMIT = 50;
const MAX_LIMIT = 200;
const MAX_Q_LENGTH = 200;
const MAX_TAGS = 20;
const MAX_FIELDS = 20;

const isoDateOrDateTime = z.union([z.iso.date(), z.iso.datetime({ offset: true })]);

/**
 * The listing's query parameters, as the API description shows them (`field.KEY=` aside). The
 * parser below reads them by hand (a step by key, repeated tags); the names it accepts are this shape's.
 */
export const dialogListQuerySchema = z.strictObject({
  status: z.enum(DIALOG_STATUSES).optional().describe('case-insensitive'),
  step: z.string().optional().describe("the step's id (UUID) or key"),
  tag: z.array(keySchema).max(MAX_TAGS).optional().describe('dialogs with every tag given'),
  campaign: z.string().regex(CAMPAIGN_ID_PATTERN).optional().describe('dialogs started from this campaign'),
  started: z.enum(['true', 'false']).optional(),
  updatedSince: isoDateOrDateTime.optional().describe('an ISO 8601 date or date-time'),
  q: z.string().max(MAX_Q_LENGTH).optional().describe('searches name and username'),
  limit: z.coerce.number().int().min(1).max(MAX_LIMIT).default(DEFAULT_LIMIT),
  cursor: z.string().optional().describe('the nextCursor of the previous page'),
});
const LIST_PARAMS: ReadonlySet<string> = new Set(Object.keys(dialogListQuerySchema.shape));

function bad(param: string, message: string, code = `invalid_${param.replace(/\W/g, '_')}`): DomainError {
  return new DomainError('invalid', code, `${param} ${message}`, { param });
}

/** The one value of a query parameter given at most once. */
function single(ctx: Pick<Context, 'query'>, param: string): string | undefined {
  const value = ctx.query[param];
  if (Array.isArray(value)) throw bad(param, 'must be given once');
  return value;
}

/** The opaque cursor: base64url of the last item's sort key. */
export function encodeCursor(position: DialogListPosition): string {
  return Buffer.from(JSON.stringify([position.updatedAtMicros, position.chatId])).toString('base64url');
}

function decodeCursor(text: string): DialogListPosition {
  let parsed: unknown;
  try {
    parsed = /^[A-Za-z0-9_-]{1,200}$/.test(text) ? JSON.parse(Buffer.from(text, 'base64url').toString()) : null;
  } catch {
    parsed = null;
  }
  if (
    !Array.isArray(parsed) ||
    parsed.length !== 2 ||
    typeof parsed[0] !== 'string' ||
    typeof parsed[1] !== 'string' ||
    !/^-?\d{1,19}$/.test(parsed[0]) ||
    !/^-?\d{1,19}$/.test(parsed[1])
  ) {
    throw bad('cursor', 'is not a cursor this listing gave');
  }
  return { updatedAtMicros: parsed[0], chatId: parsed[1] };
}

/** Reads the listing's query parameters (the API's and the console's); each one that cannot be read is refused (400) by name. */
export async function readListQuery(
  ctx: Pick<Context, 'query'>,
  deps: ManagementDeps,
  botId: string,
): Promise<{ filter: DialogFilter; limit: number; after: DialogListPosition | null }> {
  refuseUnstorableText({ ...ctx.query });
  const filter: DialogFilter = {};
  const fields: Record<string, string> = {};
  for (const param of Object.keys(ctx.query)) {
    if (LIST_PARAMS.has(param)) continue;
    if (!param.startsWith('field.')) throw bad(param, 'is not a parameter of this listing', 'unknown_param');
    const key = param.slice('field.'.length);
    const problem = keyProblem(key);
    if (problem) throw bad(param, `: the field key ${problem}`);
    const value = single(ctx, param)!;
    if (Object.keys(fields).length >= MAX_FIELDS) throw bad(param, `: at most ${MAX_FIELDS} field filters`);
    fields[key] = value;
  }
  if (Object.keys(fields).length > 0) filter.fields = fields;

  const status = single(ctx, 'status');
  if (status !== undefined) {
    const parsed = parseStatus(status);
    if (!parsed) throw bad('status', 'must be one of auto, manual, blocked');
    filter.status = parsed;
  }

  const step = single(ctx, 'step');
  if (step !== undefined) {
    if (UUID_PATTERN.test(step)) filter.stepId = step.toLowerCase();
    else {
      const problem = keyProblem(step);
      if (problem) throw bad('step', `must be a step id or key: ${problem}`);
      const found = (await listStepRefs(deps.db, botId)).find((ref) => ref.key === step);
      if (!found) throw bad('step', 'names no step of the script', 'unknown_step');
      filter.stepId = found.id;
    }
  }

  const tagValue = ctx.query.tag;
  if (tagValue !== undefined) {
    const tags = Array.isArray(tagValue) ? tagValue : [tagValue];
    if (tags.length > MAX_TAGS) throw bad('tag', `may be given at most ${MAX_TAGS} times`);
    for (const tag of tags) {
      const problem = keyProblem(tag);
      if (problem) throw bad('tag', problem);
    }
    filter.tags = [...new Set(tags)];
  }

  const campaign = single(ctx, 'campaign');
  if (campaign !== undefined) {
    if (!CAMPAIGN_ID_PATTERN.test(campaign)) throw bad('campaign', 'must be a campaign id');
    filter.campaignId = campaign;
  }

  const started = single(ctx, 'started');
  if (started !== undefined) {
    if (started !== 'true' && started !== 'false') throw bad('started', 'must be true or false');
    filter.started = started === 'true';
  }

  const updatedSince = single(ctx, 'updatedSince');
  if (updatedSince !== undefined) {
    if (!isoDateOrDateTime.safeParse(updatedSince).success)
      throw bad('updatedSince', 'must be an ISO 8601 date or date-time');
    filter.updatedSince = new Date(updatedSince);
  }

  const q = single(ctx, 'q');
  if (q !== undefined) {
    if (q.length > MAX_Q_LENGTH) throw bad('q', `must be at most ${MAX_Q_LENGTH} characters`);
    if (q !== '') filter.q = q;
  }

  const limitText = single(ctx, 'limit');
  let limit = DEFAULT_LIMIT;
  if (limitText !== undefined) {
    limit = /^\d{1,4}$/.test(limitText) ? Number(limitText) : 0;
    if (limit < 1 || limit > MAX_LIMIT) throw bad('limit', `must be an integer from 1 to ${MAX_LIMIT}`);
  }

  const cursor = single(ctx, 'cursor');
  return { filter, limit, after: cursor === undefined ? null : decodeCursor(cursor) };
}

export function registerDialogRoutes(router: Router, deps: ManagementDeps): void {
  router.get('/bots/:botId/dialogs', async (ctx) => {
    const botId = currentBot(ctx).id;
    const { filter, limit, after } = await readListQuery(ctx, deps, botId);
    const page = await listDialogs(deps.db, botId, filter, limit, after);
    // Each item is the view GET …/dialogs/{chatId} answers, its conversions included (one query for the page).
    const conversions = await listConversionsOfDialogs(
      deps.db,
      botId,
      page.items.map((dialog) => dialog.chatId),
    );
    const items = page.items.map((dialog) => ({ ...dialog, conversions: conversions.get(dialog.chatId) ?? [] }));
    ctx.body = { items, nextCursor: page.next ? encodeCursor(page.next) : null };
  });

  router.get('/bots/:botId/dialogs/:chatId', async (ctx) => {
    const chatId = chatIdParam(ctx.params.chatId!);
    const dialog = await findDialog(deps.db, currentBot(ctx).id, chatId);
    if (!dialog) throw unknownDialogError();
    ctx.body = { ...dialog, conversions: await listDialogConversions(deps.db, currentBot(ctx).id, chatId) };
  });
}
