import type Router from '@koa/router';
import { z } from 'zod';
import { insertBot, type BotRecord } from '../../db/bots.js';
import { readJsonBody } from '../body.js';
import { parseBody } from '../validation.js';
import { currentBot, type ManagementDeps } from './management-deps.js';

function isTimeZone(value: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: value });
    return true;
  } catch {
    return false;
  }
}

const createBotSchema = z.strictObject({
  name: z.string().trim().min(1).max(200),
  telegramToken: z
    .string()
    .regex(/^\d{1,20}:[A-Za-z0-9_-]{20,100}$/, 'must be a Telegram bot token such as 123456:ABC-DEF…')
    .optional(),
  timezone: z.string().refine(isTimeZone, 'must be an IANA time zone such as Europe/Berlin').default('UTC'),
});

export function botJson(bot: BotRecord): object {
  return {
    id: bot.id,
    name: bot.name,
    timezone: bot.timezone,
    hasTelegramToken: bot.telegramToken !== null,
    telegram: bot.telegramInfo,
    createdAt: bot.createdAt.toISOString(),
    updatedAt: bot.updatedAt.toISOString(),
  };
}

export function registerBotRoutes(router: Router, deps: ManagementDeps): void {
  router.post('/bots', async (ctx) => {
    const input = parseBody(createBotSchema, await readJsonBody(ctx));
    const bot = await insertBot(deps.db, {
      name: input.name,
      timezone: input.timezone,
      telegramToken: input.telegramToken ?? null,
      telegramInfo: null,
    });
    ctx.status = 201;
    ctx.body = { ...botJson(bot) };
  });

  router.get('/bots/:botId', (ctx) => {
    ctx.body = botJson(currentBot(ctx));
  });
}
