import { timingSafeEqual } from 'node:crypto';
import type { Context } from 'koa';
import type { Knex } from 'knex';
import { findTelegramWebhookSecret, listBotIds } from '../../db/bots.js';
import { DomainError } from '../../domain/errors.js';
import type { Logger } from '../../config/log.js';
import type { DialogUpdateQueue } from '../../jobs/dialog-update-queue.js';
import { telegramUpdateJob } from '../../jobs/telegram-update-job.js';
import { LruCache } from '../../util/lru-cache.js';
import { readJsonBody } from '../body.js';
import { KnownIds } from '../postback-view-cache.js';
import { UUID_PATTERN } from '../validation.js';
import { requestLog, traced } from '../../observability/request-context.js';

export interface TelegramRouteDeps {
  db: Knex;
  log: Logger;
  queue: DialogUpdateQueue;
}

function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * `POST /telegram/{botId}`: an update from Telegram's webhook. The secret header must match the
 * bot's; the update is queued as its dialog's next input (answered 200 once durably queued). A
 * bot id not among the known ones is refused without a query (see KnownIds); a new bot's id is
 * looked up within the budget for unknown ids, and Telegram retries what was refused.
 */
export function telegramWebhookHandler(deps: TelegramRouteDeps) {
  type Known = { secret: string | null; token: string | null; at: number };
  const secrets = new LruCache<string, Known>(10_000);
  const botIds = new KnownIds(() => listBotIds(deps.db));
  const unknown: Known = { secret: null, token: null, at: 0 };
  const botOf = async (botId: string): Promise<Known> => {
    if (!(await botIds.mayExist(botId))) return unknown;
    const cached = secrets.get(botId);
    if (cached && Date.now() - cached.at < 5_000) return cached;
    const found = await findTelegramWebhookSecret(deps.db, botId);
    const known: Known = { secret: found?.secret ?? null, token: found?.token ?? null, at: Date.now() };
    if (found) botIds.add(botId);
    secrets.set(botId, known);
    return known;
  };

  return async (ctx: Context, botId: string): Promise<void> => {
    const given = ctx.get('x-telegram-bot-api-secret-token');
    const known = UUID_PATTERN.test(botId) ? await botOf(botId.toLowerCase()) : null;
    const secret = known?.secret;
    if (!secret || !given || !sameSecret(given, secret) || !known.token) {
      throw new DomainError(
        'unauthorized',
        'unauthorized',
        'a valid X-Telegram-Bot-Api-Secret-Token header is required',
      );
    }
    const update = await readJsonBody(ctx);
    if (typeof update.update_id !== 'number') {
      requestLog(ctx, deps.log).warn({ botId }, 'telegram update without update_id dropped');
      ctx.body = { ok: true };
      return;
    }
    const job = telegramUpdateJob(botId.toLowerCase(), known.token, update);
    if (!job) {
      requestLog(ctx, deps.log).warn(
        { botId, updateId: update.update_id },
        'telegram update of an unknown shape dropped',
      );
      ctx.body = { ok: true };
      return;
    }
    try {
      await deps.queue.add(traced(ctx, job));
    } catch (error) {
      throw new DomainError('unavailable', 'queue_unavailable', 'the update queue is unreachable', { cause: error });
    }
    ctx.body = { ok: true };
  };
}
