import type { Context } from 'koa';
import type { Knex } from 'knex';
import { findTelegramWebhookSecret, listBotIds } from '../../db/bots.js';
import { DomainError } from '../../domain/errors.js';
import type { Logger } from '../../config/log.js';
import type { DialogUpdateQueue } from '../../jobs/dialog-update-queue.js';
import { telegramUpdateJob } from '../../jobs/telegram-update-job.js';
import { LoadingCache } from '../../util/loading-cache.js';
import { sameSecret } from '../../util/same-secret.js';
import { readJsonBody } from '../body.js';
import { KnownIds } from '../postback-view-cache.js';
import { queueUnavailable } from '../queue-unavailable.js';
import { UUID_PATTERN } from '../validation.js';
import { requestLog, traced } from '../../observability/request-context.js';

export interface TelegramRouteDeps {
  log: Logger;
  queue: DialogUpdateQueue;
  /** The bots' secrets and tokens as this process knows them (dropped on invalidations). */
  bots: TelegramBotView;
}

type KnownBot = { secret: string | null; token: string | null };
const UNKNOWN_BOT: KnownBot = { secret: null, token: null };

/**
 * Each bot's webhook secret and token, read at most every 5 s per bot. A bot id not among the
 * known ones is refused without a query (see KnownIds); a new bot's id is looked up within the
 * budget for unknown ids. A deleted bot, or a changed token, is dropped at once through the
 * invalidations every web process hears.
 */
export class TelegramBotView {
  // Concurrent updates of a bot whose entry expired share one read.
  private readonly secrets = new LoadingCache<string, KnownBot>(10_000, () => 5_000);
  private readonly botIds: KnownIds;

  constructor(private readonly db: Knex) {
    this.botIds = new KnownIds(() => listBotIds(db));
  }

  async get(botId: string): Promise<KnownBot> {
    if (!(await this.botIds.mayExist(botId))) return UNKNOWN_BOT;
    return this.secrets.get(botId, async () => {
      const found = await findTelegramWebhookSecret(this.db, botId);
      if (found) this.botIds.add(botId);
      return { secret: found?.secret ?? null, token: found?.token ?? null };
    });
  }

  forget(botId: string): void {
    this.secrets.delete(botId);
  }

  clear(): void {
    this.secrets.clear();
  }
}

/**
 * `POST /telegram/{botId}`: an update from Telegram's webhook. The secret header must match the
 * bot's; the update is queued as its dialog's next input (answered 200 once durably queued); what
 * was refused, Telegram retries.
 */
export function telegramWebhookHandler(deps: TelegramRouteDeps) {
  const { bots } = deps;
  return async (ctx: Context, botId: string): Promise<void> => {
    const given = ctx.get('x-telegram-bot-api-secret-token');
    const known = UUID_PATTERN.test(botId) ? await bots.get(botId.toLowerCase()) : null;
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
    await deps.queue.add(traced(ctx, job)).catch(queueUnavailable);
    ctx.body = { ok: true };
  };
}
