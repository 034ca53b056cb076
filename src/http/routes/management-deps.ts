import type { Context, Next } from 'koa';
import type { Knex } from 'knex';
import { findBot, type BotRecord } from '../../db/bots.js';
import { DomainError } from '../../domain/errors.js';
import { UUID_PATTERN } from '../validation.js';
import type { DeliveryRecord } from '../../db/deliveries.js';
import type { ChatUpdateJob } from '../../jobs/dialog-update-job.js';
import type { Invalidation } from '../../redis/invalidation.js';

export interface ManagementDeps {
  db: Knex;
  publicUrl: string;
  /** Ranges outbound deliveries may reach although private (OUTBOUND_ALLOW_CIDRS). */
  outboundAllowCidrs: string[];
  /** Where Bot API calls go (getMe, setWebhook) when a bot's token is set. */
  telegramApiRoot: string;
  /** Queues a replayed delivery's new chain of attempts. */
  replayDelivery(delivery: DeliveryRecord): Promise<void>;
  /** Queues an input of a known dialog (an operator's action) in its one order; resolves with that order. */
  queueDialogInput(job: ChatUpdateJob): Promise<string>;
  /** Queues a broadcast's run after `delayMs` (its start time, or at once on a resume). */
  queueBroadcast(broadcastId: string, delayMs: number): Promise<void>;
  /** Wakes a dialog so that its open inputs are handled (after a dead input is put back). */
  wakeDialog(botId: string, chatId: number): Promise<void>;
  /** Drops cached views of what changed, in this and every other web process. */
  invalidate(message: Invalidation): Promise<void>;
  /** Drops this process's cached view of a campaign link (other web processes expire theirs within seconds). */
  forgetCampaign(id: string): void;
}

/**
 * The `:botId` parameter's handler (the API's and the console's): puts the bot on `ctx.state.bot`,
 * or answers 404 unknown_bot with `message`.
 */
export function loadBotParam(db: Knex, message: string) {
  return async (id: string, ctx: Context, next: Next): Promise<void> => {
    const bot = UUID_PATTERN.test(id) ? await findBot(db, id.toLowerCase()) : null;
    if (!bot) throw new DomainError('not_found', 'unknown_bot', message, { param: 'botId' });
    ctx.state.bot = bot;
    await next();
  };
}

/** The bot named by `:botId`, loaded by the management router. */
export function currentBot(ctx: Context): BotRecord {
  return (ctx.state as { bot: BotRecord }).bot;
}
