import type { Redis } from 'ioredis';
import { scripts } from '../redis/scripts.js';

/**
 * Telegram's sending limits, as rates with bursts. A rate of 0 (or Infinity) turns that limit off,
 * e.g. `botPerSecond: 0` for a benchmark against a fake server.
 */
export interface SendLimits {
  /** Messages a second per bot, across all its chats. Telegram: about 30. */
  botPerSecond: number;
  /** Messages a bot may send at once before the rate applies. */
  botBurst: number;
  /** Messages a second per private chat. Telegram: 1. */
  chatPerSecond: number;
  chatBurst: number;
  /** Messages a minute per group (negative chat id). Telegram: 20. */
  groupPerMinute: number;
  groupBurst: number;
}

const DEFAULT_SEND_LIMITS: SendLimits = {
  botPerSecond: 30,
  botBurst: 1,
  chatPerSecond: 1,
  chatBurst: 1,
  groupPerMinute: 20,
  groupBurst: 1,
};

export interface SendLimiterOptions {
  /** Redis key prefix (the queue prefix); keys are `<prefix>:tg-rate:{<botId>}:…`. */
  prefix: string;
  limits?: Partial<SendLimits>;
}

/** What the broadcasts' lane got: a slot now, or when to ask again. */
export interface SpareSlot {
  booked: boolean;
  waitMs: number;
  /** The chat must wait (other chats may go now); else the whole bot is busy or held. */
  chatBusy: boolean;
}

interface Rate {
  intervalUs: number;
  toleranceUs: number;
}

function rate(perSecond: number, burst: number): Rate {
  if (!(perSecond > 0) || !Number.isFinite(perSecond)) return { intervalUs: 0, toleranceUs: 0 };
  const intervalUs = Math.max(1, Math.round(1_000_000 / perSecond));
  return { intervalUs, toleranceUs: Math.max(0, Math.floor(burst) - 1) * intervalUs };
}

/** Groups and channels have negative chat ids. */
function isGroupChat(chatId: number | string): boolean {
  return String(chatId).trim().startsWith('-');
}

/**
 * Telegram's send limits shared by every worker process through Redis. `reserve` books the next
 * slot for (bot, chat) and tells how long to wait before using it: the chat by GCRA, the bot by a
 * calendar of buckets, on Redis' clock (src/redis/lua/reserveTelegramSend-4.lua). `reserveSpare`
 * is the broadcasts' lane: it books only a slot free at this moment, so that the dialogs' own
 * messages go first inside the bot's limit. `hold` stops a bot's sends for Telegram's retry_after.
 */
export class SendLimiter {
  readonly limits: SendLimits;
  private readonly prefix: string;
  private readonly botBucketUs: number;
  private readonly botCap: number;
  private readonly chat: Rate;
  private readonly group: Rate;

  constructor(
    private readonly redis: Redis,
    options: SendLimiterOptions,
  ) {
    this.prefix = options.prefix;
    this.limits = { ...DEFAULT_SEND_LIMITS, ...options.limits };
    const bot = rate(this.limits.botPerSecond, this.limits.botBurst);
    this.botCap = Math.max(1, Math.floor(this.limits.botBurst));
    this.botBucketUs = bot.intervalUs * this.botCap;
    this.chat = rate(this.limits.chatPerSecond, this.limits.chatBurst);
    this.group = rate(this.limits.groupPerMinute / 60, this.limits.groupBurst);
  }

  /** Reserves a slot; resolves to the ms to wait before sending (0: send now). */
  async reserve(botId: string, chatId: number | string): Promise<number> {
    const ms = Number(await this.run(botId, chatId, 'live'));
    return Number.isFinite(ms) && ms > 0 ? ms : 0;
  }

  /**
   * Books a slot only if one is free now (the bot's current bucket has room, the chat may send, no
   * hold). When none is, nothing is booked: `waitMs` tells when to ask again, and `chatBusy` whether
   * it is the chat that must wait (other chats may go now) rather than the whole bot.
   */
  async reserveSpare(botId: string, chatId: number | string): Promise<SpareSlot> {
    const answer = await this.run(botId, chatId, 'spare');
    if (!Array.isArray(answer)) return { booked: true, waitMs: 0, chatBusy: false };
    const [code, ms] = answer.map(Number);
    if (code === 0) return { booked: true, waitMs: 0, chatBusy: false };
    return { booked: false, waitMs: Number.isFinite(ms) && ms! > 0 ? ms! : 1, chatBusy: code === 2 };
  }

  /** Nothing of the bot goes before `ms` from now (Telegram's retry_after after a 429). */
  async hold(botId: string, ms: number): Promise<void> {
    if (!(ms > 0)) return;
    await scripts.holdTelegramBot.run(this.redis, [`${this.base(botId)}:hold`], [String(Math.ceil(ms))]);
  }

  private base(botId: string): string {
    // One hash tag per bot: every key of it lives in the same slot should Redis be a cluster.
    return `${this.prefix}:tg-rate:{${botId}}`;
  }

  private async run(botId: string, chatId: number | string, lane: 'live' | 'spare'): Promise<unknown> {
    const chat = isGroupChat(chatId) ? this.group : this.chat;
    if (chat.intervalUs === 0 && this.botBucketUs === 0 && lane === 'live') return 0; // both limits lifted
    const base = this.base(botId);
    return scripts.reserveTelegramSend.run(
      this.redis,
      [`${base}:chat:${chatId}`, `${base}:bot`, `${base}:frontier`, `${base}:hold`],
      [String(chat.intervalUs), String(chat.toleranceUs), String(this.botBucketUs), String(this.botCap), lane],
    );
  }
}
