import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import type { Update, UserFromGetMe } from 'grammy/types';
import type { Redis } from 'ioredis';
import { tokenKey } from './token-key.js';
import type { Logger } from '../config/log.js';
import { BotRegistry, grammySignal } from './bot-registry.js';
import { toTelegramApiError, type TelegramApiError } from './safe-errors.js';
import { ALLOWED_UPDATES, removeWebhook } from './webhook-setup.js';

/** A bot to poll, as the bot list gives it. */
export interface PolledBot {
  botId: string;
  token: string;
  botInfo: UserFromGetMe;
}

export interface StartPollersOptions {
  redis: Redis;
  /** Redis key prefix (the queue prefix); keys are `<prefix>:tg-poll:{<botId>}:lock` and `…:offset:<token key>` (a new token starts afresh). */
  prefix: string;
  /** Every bot that should be polled (bots with a token); re-read every `rescanIntervalMs`. */
  listBots: () => Promise<PolledBot[]>;
  apiRoot: string;
  /**
   * Handles one update (typically: queue it). Updates of a bot come one at a time, in order; the
   * offset moves past an update only once this resolved. A rejection is retried after a pause.
   */
  onUpdate: (botId: string, update: Update, bot: PolledBot) => Promise<void>;
  log: Logger;
  /** Long-poll timeout passed to getUpdates. Default 25 s. */
  pollTimeoutSeconds?: number;
  /** How often the bot list is re-read and free locks are tried. Default 5 s. */
  rescanIntervalMs?: number;
  /** Lock lease; renewed every third of it while polling. Default 30 s. */
  lockTtlMs?: number;
  /** First pause after a failed getUpdates or onUpdate, doubled up to 30 s. Default 1 s. */
  retryDelayMs?: number;
  /** How long a bot whose token Telegram refuses (401) is left alone. Default 5 min. */
  refusedTokenCooldownMs?: number;
  /** Updates per getUpdates. Default 100. */
  limit?: number;
  /** Call deleteWebhook when taking a bot over (getUpdates fails while a webhook is set). Default true. */
  deleteWebhook?: boolean;
  /** A registry to share with the rest of the process; else one of its own. */
  registry?: BotRegistry;
  /**
   * Most bots this process polls at once (each is one open HTTP request). Without a cap the first
   * process to scan takes every free bot. Default: no cap.
   */
  maxBots?: number;
}

export interface Pollers {
  /** This instance's lock owner id. */
  readonly owner: string;
  /** Ids of the bots this instance polls now. */
  held(): string[];
  /** Re-reads the bot list at once (e.g. after a bot was created or its token changed). */
  rescan(): Promise<void>;
  /** Stops every poller: aborts the in-flight long polls, lets a running onUpdate finish, releases the locks. */
  stop(): Promise<void>;
}

const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;
const EXTEND = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`;
// Stores the next offset while the lock is ours, never moving it back.
const SAVE_OFFSET = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local current = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
local offset = tonumber(ARGV[2])
if offset > current then redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3]) end
return 1`;
// Telegram keeps unconfirmed updates for 24 hours; an offset older than a week is useless.
const OFFSET_TTL_MS = 7 * 24 * 3600 * 1000;

/** Sleeps, resolving early (not rejecting) when the signal aborts. */
async function pause(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return;
  await delay(ms, undefined, { signal }).catch(() => undefined);
}

function shuffle<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

interface Running {
  token: string;
  controller: AbortController;
  done: Promise<void>;
}

/**
 * Long polling for every bot, one poller per bot across all worker processes: the process that
 * holds a bot's Redis lock (`SET NX PX`, renewed while polling, deleted by its owner only) polls
 * it; the others try again at each rescan, so a stopped or dead holder is replaced within
 * `rescanIntervalMs` (stopped) or `lockTtlMs` (dead). The offset is kept in Redis too, so a new
 * holder starts after the last update the previous one handled.
 *
 * Only for deployments without an https PUBLIC_URL (see usesWebhook): taking a bot over deletes its
 * webhook.
 */
export function startPollers(options: StartPollersOptions): Pollers {
  const owner = `${hostname()}:${process.pid}:${randomBytes(6).toString('hex')}`;
  const redis = options.redis;
  const log = options.log;
  const registry = options.registry ?? new BotRegistry({ apiRoot: options.apiRoot });
  const pollTimeout = options.pollTimeoutSeconds ?? 25;
  const rescanMs = options.rescanIntervalMs ?? 5_000;
  const ttlMs = options.lockTtlMs ?? 30_000;
  const retryMs = options.retryDelayMs ?? 1_000;
  const refusedCooldownMs = options.refusedTokenCooldownMs ?? 5 * 60_000;
  const limit = options.limit ?? 100;
  const deleteWebhookFirst = options.deleteWebhook ?? true;
  const maxBots = options.maxBots ?? Number.POSITIVE_INFINITY;

  const running = new Map<string, Running>();
  const cooldownUntil = new Map<string, number>();
  let stopped = false;
  let scanning: Promise<void> | null = null;
  let timer: NodeJS.Timeout | null = null;

  const keys = (botId: string) => {
    const base = `${options.prefix}:tg-poll:{${botId}}`;
    return { lock: `${base}:lock`, offset: `${base}:offset` };
  };

  async function poll(bot: PolledBot, controller: AbortController): Promise<void> {
    const signal = controller.signal;
    const { lock } = keys(bot.botId);
    const offsetKey = `${keys(bot.botId).offset}:${tokenKey(bot.token)}`;
    const botLog = log.child({ botId: bot.botId });
    let lost = false;
    let finished = false;
    let lastRenewed = Date.now();
    const loseLock = (why: string) => {
      if (lost || finished) return;
      lost = true;
      botLog.warn({ why }, 'telegram poll lock lost');
      controller.abort();
    };
    const renew = setInterval(
      () => {
        redis.eval(EXTEND, 1, lock, owner, String(ttlMs)).then(
          (result) => {
            if (result === 1) lastRenewed = Date.now();
            else loseLock('taken by another process');
          },
          (error: unknown) => {
            botLog.warn({ err: error }, 'telegram poll lock renewal failed');
            if (Date.now() - lastRenewed >= ttlMs) loseLock('not renewed within its lease');
          },
        );
      },
      Math.max(100, Math.floor(ttlMs / 3)),
    );
    renew.unref();

    try {
      const grammyBot = registry.get(bot.token, bot.botInfo);
      const api = grammyBot.api;
      const stored = Number(await redis.get(offsetKey));
      let offset: number | undefined = Number.isSafeInteger(stored) && stored > 0 ? stored : undefined;
      botLog.info({ offset }, 'telegram polling started');

      // A token Telegram refuses: leave the bot alone for a while (another process will not do better).
      const refused = (error: TelegramApiError): boolean => {
        if (error.errorCode !== 401 && error.errorCode !== 404) return false;
        botLog.error({ method: error.method, errorCode: error.errorCode }, 'telegram refused the bot token; polling paused');
        cooldownUntil.set(bot.botId, Date.now() + refusedCooldownMs);
        return true;
      };

      if (deleteWebhookFirst) {
        for (let failures = 0; !signal.aborted; failures++) {
          try {
            await removeWebhook(grammyBot, signal);
            break;
          } catch (raw) {
            if (signal.aborted) break;
            const error = toTelegramApiError(raw, 'deleteWebhook', bot.token);
            if (refused(error)) return;
            botLog.warn({ errorCode: error.errorCode, description: error.description }, 'telegram deleteWebhook failed');
            await pause(Math.min(30_000, retryMs * 2 ** failures), signal);
          }
        }
      }

      let failures = 0;
      while (!signal.aborted) {
        let updates: Update[];
        try {
          updates = await api.getUpdates(
            { ...(offset !== undefined ? { offset } : {}), limit, timeout: pollTimeout, allowed_updates: [...ALLOWED_UPDATES] },
            grammySignal(signal),
          );
          failures = 0;
        } catch (raw) {
          if (signal.aborted) break;
          const error = toTelegramApiError(raw, 'getUpdates', bot.token);
          if (refused(error)) break;
          failures++;
          const wait = error.errorCode === 429 && error.retryAfter !== undefined
            ? error.retryAfter * 1000
            : Math.min(30_000, retryMs * 2 ** (failures - 1));
          botLog.warn({ errorCode: error.errorCode, description: error.description, waitMs: wait }, 'telegram getUpdates failed');
          await pause(wait, signal);
          continue;
        }

        for (const update of updates) {
          if (signal.aborted) break;
          // Handled in order, each until it succeeds: the offset never skips an update.
          let handled = false;
          for (let attempt = 0; !handled && !signal.aborted; attempt++) {
            try {
              await options.onUpdate(bot.botId, update, bot);
              handled = true;
            } catch (error) {
              botLog.error({ err: error, updateId: update.update_id, attempt }, 'telegram update handler failed; retrying');
              await pause(Math.min(30_000, retryMs * 2 ** attempt), signal);
            }
          }
          // Stopped while the handler was failing: the update is left to the next holder.
          if (!handled) break;
          offset = update.update_id + 1;
          try {
            const result = await redis.eval(SAVE_OFFSET, 2, lock, offsetKey, owner, String(offset), String(OFFSET_TTL_MS));
            if (result !== 1) loseLock('offset write refused');
          } catch (error) {
            // The offset still moves on in this process; only a hand-over would repeat the update.
            botLog.warn({ err: error }, 'telegram offset not saved');
          }
        }
      }
    } finally {
      clearInterval(renew);
      finished = true;
      if (!lost) {
        await redis.eval(RELEASE, 1, lock, owner).catch((error: unknown) => {
          botLog.warn({ err: error }, 'telegram poll lock not released; it lapses on its own');
        });
      }
      botLog.info('telegram polling stopped');
    }
  }

  function launch(bot: PolledBot): void {
    const controller = new AbortController();
    const entry: Running = {
      token: bot.token,
      controller,
      done: Promise.resolve(),
    };
    entry.done = poll(bot, controller)
      .catch((error: unknown) => log.error({ err: error, botId: bot.botId }, 'telegram poller crashed'))
      .finally(() => {
        if (running.get(bot.botId) === entry) running.delete(bot.botId);
      });
    running.set(bot.botId, entry);
  }

  async function halt(botId: string): Promise<void> {
    const entry = running.get(botId);
    if (!entry) return;
    entry.controller.abort();
    await entry.done;
  }

  async function scanOnce(): Promise<void> {
    let bots: PolledBot[];
    try {
      bots = await options.listBots();
    } catch (error) {
      log.warn({ err: error }, 'telegram pollers could not list the bots');
      return;
    }
    if (stopped) return;
    const wanted = new Map(bots.map((bot) => [bot.botId, bot]));
    // A bot deleted, or its token changed: stop its poller (a changed one starts again below).
    await Promise.all(
      [...running].filter(([botId, entry]) => wanted.get(botId)?.token !== entry.token).map(([botId]) => halt(botId)),
    );
    const now = Date.now();
    // In random order, so that processes with a cap share the bots out rather than race for the same.
    const candidates = shuffle([...wanted.values()]);
    for (const bot of candidates) {
      if (stopped || running.size >= maxBots) return;
      if (running.has(bot.botId) || (cooldownUntil.get(bot.botId) ?? 0) > now) continue;
      cooldownUntil.delete(bot.botId);
      try {
        const taken = await redis.set(keys(bot.botId).lock, owner, 'PX', ttlMs, 'NX');
        if (taken === 'OK' && !stopped) launch(bot);
        else if (taken === 'OK') await redis.eval(RELEASE, 1, keys(bot.botId).lock, owner);
      } catch (error) {
        log.warn({ err: error, botId: bot.botId }, 'telegram poll lock not tried');
      }
    }
  }

  function rescan(): Promise<void> {
    if (stopped) return Promise.resolve();
    scanning ??= scanOnce().finally(() => {
      scanning = null;
    });
    return scanning;
  }

  function schedule(): void {
    if (stopped) return;
    timer = setTimeout(() => {
      void rescan().finally(schedule);
    }, rescanMs);
    timer.unref();
  }

  void rescan().finally(schedule);

  return {
    owner,
    held: () => [...running.keys()],
    rescan,
    stop: async () => {
      if (stopped) return;
      stopped = true;
      if (timer) clearTimeout(timer);
      await scanning;
      await Promise.all([...running.keys()].map((botId) => halt(botId)));
    },
  };
}
