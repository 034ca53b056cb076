import type Router from '@koa/router';
import { z } from 'zod';
import { insertBot, setSigningSecret, updateBot, type BotRecord, type BotTelegram } from '../../db/bots.js';
import { generateSigningSecret } from '../../outbound/delivery/index.js';
import { readJsonBody } from '../body.js';
import { parseBody } from '../validation.js';
import { currentBot, type ManagementDeps } from './management-deps.js';
import { connectTelegram, type TelegramConnection } from './telegram-connect.js';

/** An IANA time zone in its canonical spelling (`europe/berlin` → `Europe/Berlin`), or null. */
function canonicalTimeZone(value: string): string | null {
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone: value }).resolvedOptions().timeZone;
  } catch {
    return null;
  }
}

const timezone = z
  .string()
  .transform(
    (value, ctx) =>
      canonicalTimeZone(value) ??
      (ctx.addIssue({ code: 'custom', message: 'must be an IANA time zone such as Europe/Berlin' }), z.NEVER),
  );
const telegramToken = z
  .string()
  .regex(/^\d{1,20}:[A-Za-z0-9_-]{20,100}$/, 'must be a Telegram bot token such as 123456:ABC-DEF…');
const name = z.string().trim().min(1).max(200);

const createBotSchema = z.strictObject({
  name,
  telegramToken: telegramToken.optional(),
  timezone: timezone.default('UTC'),
});
const updateBotSchema = z.strictObject({
  name: name.optional(),
  telegramToken: telegramToken.optional(),
  timezone: timezone.optional(),
});

function botJson(bot: BotRecord): object {
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

function stored(token: string, connection: TelegramConnection): BotTelegram {
  return { token, info: connection.botInfo, secret: connection.secret };
}

export function registerBotRoutes(router: Router, deps: ManagementDeps): void {
  const connect = (token: string) => connectTelegram(token, deps.telegramApiRoot, deps.publicUrl);

  router.post('/bots', async (ctx) => {
    const input = parseBody(createBotSchema, await readJsonBody(ctx));
    const connection = input.telegramToken ? await connect(input.telegramToken) : null;
    const bot = await deps.db.transaction(async (trx) => {
      const created = await insertBot(trx, {
        name: input.name,
        timezone: input.timezone,
        telegram: connection ? stored(input.telegramToken!, connection) : null,
      });
      await connection?.register(created.id); // a bot whose webhook cannot be set is not kept
      return created;
    });
    ctx.status = 201;
    ctx.body = botJson(bot);
  });

  router.get('/bots/:botId', (ctx) => {
    ctx.body = botJson(currentBot(ctx));
  });

  // A new Standard Webhooks signing secret for the bot's Send Webhook calls (the old one stops at once).
  router.post('/bots/:botId/signing-secret', async (ctx) => {
    const secret = generateSigningSecret();
    await setSigningSecret(deps.db, currentBot(ctx).id, secret);
    ctx.status = 201;
    ctx.body = { secret };
  });

  router.delete('/bots/:botId/signing-secret', async (ctx) => {
    await setSigningSecret(deps.db, currentBot(ctx).id, null);
    ctx.status = 204;
  });

  router.patch('/bots/:botId', async (ctx) => {
    const input = parseBody(updateBotSchema, await readJsonBody(ctx));
    const current = currentBot(ctx);
    const tokenChanged = input.telegramToken !== undefined && input.telegramToken !== current.telegramToken;
    const connection = tokenChanged ? await connect(input.telegramToken!) : null;
    const bot = await deps.db.transaction(async (trx) => {
      const updated = await updateBot(trx, current.id, {
        ...(input.name !== undefined ? { name: input.name } : {}),
        ...(input.timezone !== undefined ? { timezone: input.timezone } : {}),
        ...(connection ? { telegram: stored(input.telegramToken!, connection) } : {}),
      });
      await connection?.register(current.id);
      return updated;
    });
    await deps.invalidate({ kind: 'bot', id: bot.id });
    ctx.body = botJson(bot);
  });
}
