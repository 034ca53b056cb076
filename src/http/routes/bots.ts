import type Router from '@koa/router';
import { z } from 'zod';
import {
  deleteBot,
  insertBot,
  listBots,
  setSigningSecret,
  updateBot,
  type BotRecord,
  type BotTelegram,
} from '../../db/bots.js';
import { DomainError } from '../../domain/errors.js';
import { generateSigningSecret } from '../../outbound/delivery/index.js';
import { parseBotInfo } from '../../telegram/index.js';
import { readJsonBody } from '../body.js';
import { parseBody } from '../validation.js';
import { currentBot, type ManagementDeps } from './management-deps.js';
import { connectTelegram, disconnectTelegram, type TelegramConnection } from './telegram-connect.js';

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

export const createBotSchema = z.strictObject({
  name,
  telegramToken: telegramToken.optional(),
  timezone: timezone.default('UTC'),
});
export const updateBotSchema = z.strictObject({
  name: name.optional(),
  telegramToken: telegramToken.optional(),
  timezone: timezone.optional(),
});

/** DELETE's query, as the API description shows it (checked by hand against the bot's id below). */
export const deleteBotQuerySchema = z.strictObject({
  confirm: z.string().describe('the id of the bot being deleted: deleting a bot deletes all its dialogs'),
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

  router.get('/bots', async (ctx) => {
    ctx.body = { items: (await listBots(deps.db)).map(botJson) };
  });

  router.get('/bots/:botId', (ctx) => {
    ctx.body = botJson(currentBot(ctx));
  });

  // Deleting a bot deletes all its dialogs: the caller repeats the bot's id to show it means this one.
  router.delete('/bots/:botId', async (ctx) => {
    const bot = currentBot(ctx);
    const confirm = ctx.query.confirm;
    if (typeof confirm !== 'string' || confirm.toLowerCase() !== bot.id) {
      throw new DomainError(
        'invalid',
        'confirmation_required',
        'deleting a bot deletes all its dialogs: pass confirm=<the bot id>',
        { param: 'confirm' },
      );
    }
    const deleted = await deleteBot(deps.db, bot.id);
    if (!deleted) throw new DomainError('not_found', 'unknown_bot', 'no bot with this id', { param: 'botId' });
    // Its postback URLs answer 404 at once in every web process; workers drop the cached bot
    // (pollers stop at their next rescan of the bot list).
    await Promise.all([
      ...deleted.endpointIds.map((id) => deps.invalidate({ kind: 'endpoint', id })),
      deps.invalidate({ kind: 'bot', id: bot.id }),
    ]);
    const info = parseBotInfo(bot.telegramInfo);
    if (bot.telegramToken && info) {
      const told = await disconnectTelegram(bot.telegramToken, info, deps.telegramApiRoot, deps.publicUrl);
      if (!told) ctx.set('Warning', '199 flowpost "Telegram could not be told to stop sending the bot\'s updates"');
    }
    ctx.status = 204;
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
