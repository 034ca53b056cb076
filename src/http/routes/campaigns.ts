import type Router from '@koa/router';
import { campaignConversionStats } from '../../db/conversions.js';
import type { Context } from 'koa';
import { z } from 'zod';
import type { BotRecord } from '../../db/bots.js';
import {
  campaignStats,
  deleteCampaign,
  findCampaign,
  insertCampaign,
  listCampaigns,
  updateCampaign,
  type CampaignRecord,
} from '../../db/campaigns.js';
import { listStepRefs } from '../../db/script-steps.js';
import { DomainError } from '../../domain/errors.js';
import { keySchema } from '../../domain/keys.js';
import { campaignPayload, telegramStartLink } from '../../domain/tracker/start-payload.js';
import { readJsonBody } from '../body.js';
import { parseBody } from '../validation.js';
import { CAMPAIGN_ID_PATTERN } from './clicks.js';
import { currentBot, type ManagementDeps } from './management-deps.js';

const MAX_PARAMS = 50;
const MAX_FIELDS = 50;
const MAX_FIELD_VALUE = 1024;

/** Tracker fields every click sets itself: a campaign can neither read them from the query nor fix them. */
const RESERVED_FIELDS: ReadonlySet<string> = new Set(['clickid', 'campaign', 'campaign_id']);

const trackerKey = keySchema.refine((key) => !RESERVED_FIELDS.has(key), {
  error: (issue) => `"${String(issue.input)}" is set by flowpost on every click`,
});

const name = z.string().trim().min(1).max(200);
const params = z
  .array(trackerKey)
  .max(MAX_PARAMS)
  .superRefine((keys, ctx) => {
    const seen = new Set<string>();
    keys.forEach((key, index) => {
      if (seen.has(key)) ctx.addIssue({ code: 'custom', message: `"${key}" is listed twice`, path: [index] });
      seen.add(key);
    });
  });
const fields = z
  .record(trackerKey, z.string().max(MAX_FIELD_VALUE))
  .refine((value) => Object.keys(value).length <= MAX_FIELDS, { message: `at most ${MAX_FIELDS} fields` });
const stepKey = keySchema;

export const createCampaignSchema = z.strictObject({
  name,
  params: params.default([]),
  fields: fields.default({}),
  startStep: stepKey.nullable().default(null),
});

export const updateCampaignSchema = z.strictObject({
  name: name.optional(),
  params: params.optional(),
  fields: fields.optional(),
  startStep: stepKey.nullable().optional(),
});

function usernameOf(bot: BotRecord): string | null {
  const username = bot.telegramInfo?.username;
  return typeof username === 'string' && username !== '' ? username : null;
}

function requireUsername(bot: BotRecord): string {
  const username = usernameOf(bot);
  if (username === null) {
    throw new DomainError(
      'conflict',
      'bot_without_username',
      'campaign links open the bot in Telegram: connect a Telegram token to the bot first (PATCH /api/v1/bots/{botId} with "telegramToken")',
    );
  }
  return username;
}

/** A step key of the bot's current script, or 422 `unknown_step`. */
async function checkStartStep(deps: ManagementDeps, botId: string, key: string | null | undefined): Promise<void> {
  if (key === null || key === undefined) return;
  const steps = await listStepRefs(deps.db, botId);
  if (!steps.some((step) => step.key === key)) {
    throw new DomainError('unprocessable', 'unknown_step', `the bot's script has no step "${key}"`, {
      param: 'startStep',
    });
  }
}

function unknownCampaign(): DomainError {
  return new DomainError('not_found', 'unknown_campaign', 'no campaign with this id on this bot', { param: 'id' });
}

/** The campaign named by `:id` on the current bot, or 404. */
async function campaignOf(deps: ManagementDeps, ctx: Context & { params: Record<string, string> }) {
  const id = ctx.params.id!;
  const campaign = CAMPAIGN_ID_PATTERN.test(id) ? await findCampaign(deps.db, id, currentBot(ctx).id) : null;
  if (!campaign) throw unknownCampaign();
  return campaign;
}

const isoDateOrDateTime = z.union([z.iso.date(), z.iso.datetime({ offset: true })]);

/** The stats' query parameters, as the API description shows them (each read by `dateParam`). */
export const statsQuerySchema = z.strictObject({
  from: isoDateOrDateTime.optional().describe('an ISO 8601 date or date-time'),
  to: isoDateOrDateTime.optional().describe('an ISO 8601 date or date-time'),
});

/** An optional ISO 8601 date or date-time query parameter; 400 naming it when it cannot be read. */
function dateParam(ctx: Context, param: keyof typeof statsQuerySchema.shape): Date | null {
  const value = ctx.query[param];
  if (value === undefined) return null;
  const text = Array.isArray(value) ? undefined : value;
  const ok = text !== undefined && isoDateOrDateTime.safeParse(text).success;
  if (!ok) {
    throw new DomainError('invalid', `invalid_${param}`, `${param} must be an ISO 8601 date or date-time`, { param });
  }
  return new Date(text);
}

export function registerCampaignRoutes(router: Router, deps: ManagementDeps): void {
  const json = (bot: BotRecord, campaign: CampaignRecord) => {
    const username = usernameOf(bot);
    return {
      id: campaign.id,
      name: campaign.name,
      params: campaign.params,
      fields: campaign.fields,
      startStep: campaign.startStep,
      link: `${deps.publicUrl}/c/${campaign.id}`,
      telegramLink: username === null ? null : telegramStartLink(username, campaignPayload(campaign.id)),
      createdAt: campaign.createdAt.toISOString(),
      updatedAt: campaign.updatedAt.toISOString(),
    };
  };

  router.post('/bots/:botId/campaigns', async (ctx) => {
    const bot = currentBot(ctx);
    const input = parseBody(createCampaignSchema, await readJsonBody(ctx));
    requireUsername(bot);
    await checkStartStep(deps, bot.id, input.startStep);
    const campaign = await insertCampaign(deps.db, { botId: bot.id, ...input });
    ctx.status = 201;
    ctx.body = json(bot, campaign);
  });

  router.get('/bots/:botId/campaigns', async (ctx) => {
    const bot = currentBot(ctx);
    ctx.body = { campaigns: (await listCampaigns(deps.db, bot.id)).map((campaign) => json(bot, campaign)) };
  });

  router.get('/bots/:botId/campaigns/:id', async (ctx) => {
    ctx.body = json(currentBot(ctx), await campaignOf(deps, ctx));
  });

  router.patch('/bots/:botId/campaigns/:id', async (ctx) => {
    const bot = currentBot(ctx);
    const existing = await campaignOf(deps, ctx);
    const input = parseBody(updateCampaignSchema, await readJsonBody(ctx));
    await checkStartStep(deps, bot.id, input.startStep);
    const campaign = await updateCampaign(deps.db, bot.id, existing.id, input);
    if (!campaign) throw unknownCampaign();
    deps.forgetCampaign(campaign.id);
    ctx.body = json(bot, campaign);
  });

  router.delete('/bots/:botId/campaigns/:id', async (ctx) => {
    const existing = await campaignOf(deps, ctx);
    if (!(await deleteCampaign(deps.db, currentBot(ctx).id, existing.id))) throw unknownCampaign();
    deps.forgetCampaign(existing.id);
    ctx.status = 204;
  });

  router.get('/bots/:botId/campaigns/:id/stats', async (ctx) => {
    const campaign = await campaignOf(deps, ctx);
    const from = dateParam(ctx, 'from');
    const to = dateParam(ctx, 'to');
    const [stats, converted] = await Promise.all([
      campaignStats(deps.db, [campaign.id], from, to),
      campaignConversionStats(deps.db, [campaign.id], from, to),
    ]);
    ctx.body = { ...stats.get(campaign.id)!, ...converted.get(campaign.id)! };
  });
}
