import type { Redis } from 'ioredis';
import { LuaScript } from '../outbound/fairness/lua.js';

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

export const DEFAULT_SEND_LIMITS: SendLimits = {
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

/**
 * One Lua script, on Redis' clock so that every process agrees (times in µs).
 *
 * The chat: GCRA. Its key holds the theoretical arrival time (TAT); a send may go at
 * max(now, TAT − tolerance), and the TAT then moves to max(TAT, send time) + interval.
 *
 * The bot: a calendar of buckets (`bucket` µs long, `cap` sends each, one key per bucket). A send
 * takes the first bucket with room at or after the chat's time. Unlike a single GCRA over both
 * keys, a send that waits a second for its chat does not hold up the bot's other chats. A
 * frontier key remembers the first bucket from now on that may have room, so the common case
 * (a chat that may send now) reads one bucket, not every full one.
 *
 * KEYS: chat TAT key, bot bucket key base, bot frontier key.
 * ARGV: chat interval, chat tolerance, bot bucket length (0: no bot limit), bot cap.
 * Returns the ms to wait before sending.
 */
const RESERVE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local at = now
local chatInterval = tonumber(ARGV[1])
local chatTat = 0
if chatInterval > 0 then
  chatTat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
  if chatTat < now then chatTat = now end
  local earliest = chatTat - tonumber(ARGV[2])
  if earliest > at then at = earliest end
end
local bucketUs = tonumber(ARGV[3])
if bucketUs > 0 then
  local cap = tonumber(ARGV[4])
  local nowBucket = math.floor(now / bucketUs)
  local frontier = tonumber(redis.call('GET', KEYS[3]) or '0') or 0
  if frontier < nowBucket then frontier = nowBucket end
  local b = math.floor(at / bucketUs)
  local fromFrontier = b <= frontier
  if fromFrontier then b = frontier end
  local count = 0
  local guard = 0
  while true do
    count = tonumber(redis.call('GET', KEYS[2] .. ':' .. string.format('%d', b)) or '0') or 0
    if count < cap or guard >= 100000 then break end
    b = b + 1
    guard = guard + 1
  end
  local key = KEYS[2] .. ':' .. string.format('%d', b)
  count = redis.call('INCR', key)
  local bucketEndMs = math.ceil(((b + 1) * bucketUs - now) / 1000)
  redis.call('PEXPIRE', key, bucketEndMs + 1000)
  if fromFrontier then
    local nextFrontier = b
    if count >= cap then nextFrontier = b + 1 end
    redis.call('SET', KEYS[3], string.format('%d', nextFrontier), 'PX', bucketEndMs + 2000)
  end
  local start = b * bucketUs
  if start > at then at = start end
end
if chatInterval > 0 then
  if chatTat < at then chatTat = at end
  local nextTat = chatTat + chatInterval
  redis.call('SET', KEYS[1], string.format('%d', nextTat), 'PX', math.ceil((nextTat - now) / 1000) + 1000)
end
return math.ceil((at - now) / 1000)
`;

const RESERVE_SCRIPT = new LuaScript(RESERVE);

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
export function isGroupChat(chatId: number | string): boolean {
  return String(chatId).trim().startsWith('-');
}

/**
 * Telegram's send limits shared by every worker process through Redis. `reserve` books the next
 * slot for (bot, chat) and tells how long to wait before using it.
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
    const chat = isGroupChat(chatId) ? this.group : this.chat;
    if (chat.intervalUs === 0 && this.botBucketUs === 0) return 0; // both limits lifted
    // One hash tag per bot: both keys live in the same slot should Redis be a cluster.
    const base = `${this.prefix}:tg-rate:{${botId}}`;
    const wait = await RESERVE_SCRIPT.run(
      this.redis,
      [`${base}:chat:${chatId}`, `${base}:bot`, `${base}:frontier`],
      [String(chat.intervalUs), String(chat.toleranceUs), String(this.botBucketUs), String(this.botCap)],
    );
    const ms = Number(wait);
    return Number.isFinite(ms) && ms > 0 ? ms : 0;
  }
}
