import { timingSafeEqual } from 'node:crypto';
import type { Queue } from 'bullmq';
import type { Context } from 'koa';
import type { Knex } from 'knex';
import { InputError } from '../../domain/input-error.js';
import type { DialogEventJob } from '../../jobs/dialog-event-job.js';
import type { Logger } from '../../log.js';
import { acceptTelegramUpdate } from '../../runner/accept-telegram-update.js';
import type { DialogInbox } from '../../runner/dialog-inbox.js';
import { readJsonBody } from '../body.js';
import { ServiceUnavailableError } from '../errors.js';
import { UUID_PATTERN } from '../validation.js';

export interface TelegramRouteDeps {
  db: Knex;
  log: Logger;
  inbox: DialogInbox;
  queue: Queue<DialogEventJob>;
}

function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * `POST /telegram/{botId}`: an update from Telegram's webhook. The secret header must match the
 * bot's; the update is put in its dialog's inbox and answered 200 at once.
 */
export function telegramWebhookHandler(deps: TelegramRouteDeps) {
  const secrets = new Map<string, { secret: string | null; at: number }>();
  const secretOf = async (botId: string): Promise<string | null> => {
    const cached = secrets.get(botId);
    if (cached && Date.now() - cached.at < 5_000) return cached.secret;
    const row = await deps.db('bots').where({ id: botId }).first('telegram_secret');
    const secret = (row?.telegram_secret as string | undefined) ?? null;
    if (secrets.size > 10_000) secrets.clear();
    secrets.set(botId, { secret, at: Date.now() });
    return secret;
  };

  return async (ctx: Context, botId: string): Promise<void> => {
    const given = ctx.get('x-telegram-bot-api-secret-token');
    const secret = UUID_PATTERN.test(botId) ? await secretOf(botId.toLowerCase()) : null;
    if (!secret || !given || !sameSecret(given, secret)) {
      throw new InputError(401, 'unauthorized', 'a valid X-Telegram-Bot-Api-Secret-Token header is required');
    }
    const update = await readJsonBody(ctx);
    if (typeof update.update_id !== 'number') {
      deps.log.warn({ botId }, 'telegram update without update_id dropped');
      ctx.body = { ok: true };
      return;
    }
    try {
      const result = await acceptTelegramUpdate({ inbox: deps.inbox, queue: deps.queue }, botId.toLowerCase(), update as never);
      if (result === 'dropped') deps.log.warn({ botId, updateId: update.update_id }, 'telegram update of an unknown shape dropped');
    } catch (error) {
      throw new ServiceUnavailableError('queue_unavailable', 'the update queue is unreachable', { cause: error });
    }
    ctx.body = { ok: true };
  };
}
