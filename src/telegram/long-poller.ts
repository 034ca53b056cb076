import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import type { Bot } from 'grammy';
import type { Update, UserFromGetMe } from 'grammy/types';
import type { Redis } from 'ioredis';
import type { Logger } from '../config/log.js';
import { scripts } from '../redis/scripts.js';
import { BotRegistry, grammySignal } from './bot-registry.js';
import { toTelegramApiError, type TelegramApiError } from './safe-errors.js';
import { tokenKey } from './token-key.js';
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
  /** Lock lease (QUEUE_LOCK_MS); renewed every third of it while polling. Default 10 s. */
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

// Telegram keeps unconfirmed updates for 24 hours; an offset older than a week is useless.
const OFFSET_TTL_MS = 7 * 24 * 3600 * 1000;
const MAX_RETRY_DELAY_MS = 30_000;

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

/** The options with their defaults filled in, and this process's lock owner id. */
interface PollerSettings {
  owner: string;
  redis: Redis;
  prefix: string;
  log: Logger;
  registry: BotRegistry;
  listBots: () => Promise<PolledBot[]>;
  onUpdate: (botId: string, update: Update, bot: PolledBot) => Promise<void>;
  pollTimeoutSeconds: number;
  rescanIntervalMs: number;
  lockTtlMs: number;
  retryDelayMs: number;
  refusedTokenCooldownMs: number;
  limit: number;
  deleteWebhook: boolean;
  maxBots: number;
}

function resolveSettings(options: StartPollersOptions): PollerSettings {
  return {
    owner: `${hostname()}:${process.pid}:${randomBytes(6).toString('hex')}`,
    redis: options.redis,
    prefix: options.prefix,
    log: options.log,
    registry: options.registry ?? new BotRegistry({ apiRoot: options.apiRoot }),
    listBots: options.listBots,
    onUpdate: options.onUpdate,
    pollTimeoutSeconds: options.pollTimeoutSeconds ?? 25,
    rescanIntervalMs: options.rescanIntervalMs ?? 5_000,
    lockTtlMs: options.lockTtlMs ?? 10_000,
    retryDelayMs: options.retryDelayMs ?? 1_000,
    refusedTokenCooldownMs: options.refusedTokenCooldownMs ?? 5 * 60_000,
    limit: options.limit ?? 100,
    deleteWebhook: options.deleteWebhook ?? true,
    maxBots: options.maxBots ?? Number.POSITIVE_INFINITY,
  };
}

function pollLockKey(prefix: string, botId: string): string {
  return `${prefix}:tg-poll:{${botId}}:lock`;
}

/** Per token: a new token starts afresh. */
function pollOffsetKey(prefix: string, botId: string, token: string): string {
  return `${prefix}:tg-poll:{${botId}}:offset:${tokenKey(token)}`;
}

/**
 * One bot's long poll, while this process holds the bot's lock: renews the lock, reads the stored
 * offset, takes the bot over from its webhook, then fetches updates and hands them to `onUpdate`
 * one at a time, storing the offset past each. Ends when stopped (its controller aborts), when the
 * lock is lost, or when Telegram refuses the token; then lets go of the lock.
 */
class BotPoller {
  readonly #settings: PollerSettings;
  readonly #bot: PolledBot;
  readonly #controller: AbortController;
  readonly #signal: AbortSignal;
  readonly #log: Logger;
  readonly #lockKey: string;
  readonly #offsetKey: string;
  /** Called when Telegram refuses the token: the bot is left alone for a while. */
  readonly #coolDown: () => void;
  #lost = false;
  #finished = false;
  #lastRenewed = Date.now();
  #offset: number | undefined;

  constructor(bot: PolledBot, controller: AbortController, settings: PollerSettings, coolDown: () => void) {
    this.#settings = settings;
    this.#bot = bot;
    this.#controller = controller;
    this.#signal = controller.signal;
    this.#log = settings.log.child({ botId: bot.botId });
    this.#lockKey = pollLockKey(settings.prefix, bot.botId);
    this.#offsetKey = pollOffsetKey(settings.prefix, bot.botId, bot.token);
    this.#coolDown = coolDown;
  }

  async run(): Promise<void> {
    const renewal = this.#keepLockRenewed();
    try {
      const grammyBot = this.#settings.registry.get(this.#bot.token, this.#bot.botInfo);
      this.#offset = await this.#readOffset();
      this.#log.info({ offset: this.#offset }, 'telegram polling started');
      if (this.#settings.deleteWebhook && !(await this.#removeWebhook(grammyBot))) return;
      await this.#pollUntilStopped(grammyBot.api);
    } finally {
      clearInterval(renewal);
      this.#finished = true;
      if (!this.#lost) await this.#releaseLock();
      this.#log.info('telegram polling stopped');
    }
  }

  #keepLockRenewed(): NodeJS.Timeout {
    const renewal = setInterval(() => this.#renewLock(), Math.max(100, Math.floor(this.#settings.lockTtlMs / 3)));
    renewal.unref();
    return renewal;
  }

  #renewLock(): void {
    const { redis, owner, lockTtlMs } = this.#settings;
    scripts.extendLock.run(redis, [this.#lockKey], [owner, String(lockTtlMs)]).then(
      (result) => {
        if (result === 1) this.#lastRenewed = Date.now();
        else this.#loseLock('taken by another process');
      },
      (error: unknown) => {
        this.#log.warn({ err: error }, 'telegram poll lock renewal failed');
        if (Date.now() - this.#lastRenewed >= lockTtlMs) this.#loseLock('not renewed within its lease');
      },
    );
  }

  /** Stops polling at once: another process may hold the lock now. */
  #loseLock(why: string): void {
    if (this.#lost || this.#finished) return;
    this.#lost = true;
    this.#log.warn({ why }, 'telegram poll lock lost');
    this.#controller.abort();
  }

  async #releaseLock(): Promise<void> {
    const { redis, owner } = this.#settings;
    await scripts.releaseLock.run(redis, [this.#lockKey], [owner]).catch((error: unknown) => {
      this.#log.warn({ err: error }, 'telegram poll lock not released; it lapses on its own');
    });
  }

  async #readOffset(): Promise<number | undefined> {
    const stored = Number(await this.#settings.redis.get(this.#offsetKey));
    return Number.isSafeInteger(stored) && stored > 0 ? stored : undefined;
  }

  /** getUpdates fails while a webhook is set. Returns false when Telegram refused the token. */
  async #removeWebhook(grammyBot: Bot): Promise<boolean> {
    for (let failures = 0; !this.#signal.aborted; failures++) {
      try {
        await removeWebhook(grammyBot, this.#signal);
        return true;
      } catch (raw) {
        if (this.#signal.aborted) break;
        const error = toTelegramApiError(raw, 'deleteWebhook', this.#bot.token);
        if (this.#refused(error)) return false;
        this.#log.warn({ errorCode: error.errorCode, description: error.description }, 'telegram deleteWebhook failed');
        await pause(this.#retryDelayMs(failures), this.#signal);
      }
    }
    return true;
  }

  async #pollUntilStopped(api: Bot['api']): Promise<void> {
    let failures = 0;
    while (!this.#signal.aborted) {
      let updates: Update[];
      try {
        updates = await this.#getUpdates(api);
        failures = 0;
      } catch (raw) {
        if (this.#signal.aborted) break;
        const error = toTelegramApiError(raw, 'getUpdates', this.#bot.token);
        if (this.#refused(error)) break;
        failures++;
        await this.#waitAfterFailedPoll(error, failures);
        continue;
      }
      await this.#handleInOrder(updates);
    }
  }

  #getUpdates(api: Bot['api']): Promise<Update[]> {
    const { limit, pollTimeoutSeconds } = this.#settings;
    const offset = this.#offset;
    return api.getUpdates(
      {
        ...(offset !== undefined ? { offset } : {}),
        limit,
        timeout: pollTimeoutSeconds,
        allowed_updates: [...ALLOWED_UPDATES],
      },
      grammySignal(this.#signal),
    );
  }

  async #waitAfterFailedPoll(error: TelegramApiError, failures: number): Promise<void> {
    const wait =
      error.errorCode === 429 && error.retryAfter !== undefined
        ? error.retryAfter * 1000
        : this.#retryDelayMs(failures - 1);
    this.#log.warn(
      { errorCode: error.errorCode, description: error.description, waitMs: wait },
      'telegram getUpdates failed',
    );
    await pause(wait, this.#signal);
  }

  /** Each update until it succeeds, in order: the offset never skips an update. */
  async #handleInOrder(updates: Update[]): Promise<void> {
    for (const update of updates) {
      if (this.#signal.aborted) return;
      // Stopped while the handler was failing: the update is left to the next holder.
      if (!(await this.#handleUntilDone(update))) return;
      this.#offset = update.update_id + 1;
      await this.#saveOffset(this.#offset);
    }
  }

  /** Returns false when stopped before the handler succeeded. */
  async #handleUntilDone(update: Update): Promise<boolean> {
    for (let attempt = 0; !this.#signal.aborted; attempt++) {
      try {
        await this.#settings.onUpdate(this.#bot.botId, update, this.#bot);
        return true;
      } catch (error) {
        this.#log.error(
          { err: error, updateId: update.update_id, attempt },
          'telegram update handler failed; retrying',
        );
        await pause(this.#retryDelayMs(attempt), this.#signal);
      }
    }
    return false;
  }

  async #saveOffset(offset: number): Promise<void> {
    const { redis, owner } = this.#settings;
    try {
      const result = await scripts.saveTelegramOffset.run(
        redis,
        [this.#lockKey, this.#offsetKey],
        [owner, String(offset), String(OFFSET_TTL_MS)],
      );
      if (result !== 1) this.#loseLock('offset write refused');
    } catch (error) {
      // The offset still moves on in this process; only a hand-over would repeat the update.
      this.#log.warn({ err: error }, 'telegram offset not saved');
    }
  }

  /** A token Telegram refuses: leave the bot alone for a while (another process will not do better). */
  #refused(error: TelegramApiError): boolean {
    if (error.errorCode !== 401 && error.errorCode !== 404) return false;
    this.#log.error(
      { method: error.method, errorCode: error.errorCode },
      'telegram refused the bot token; polling paused',
    );
    this.#coolDown();
    return true;
  }

  /** Doubles from `retryDelayMs` with each failure, up to 30 s. */
  #retryDelayMs(failuresBefore: number): number {
    return Math.min(MAX_RETRY_DELAY_MS, this.#settings.retryDelayMs * 2 ** failuresBefore);
  }
}

interface RunningPoller {
  token: string;
  controller: AbortController;
  done: Promise<void>;
}

/**
 * This process's pollers: every `rescanIntervalMs` reads the bot list, stops the pollers of bots
 * gone or with a new token, and tries the locks of the free bots (up to `maxBots`).
 */
class PollerPool {
  readonly #settings: PollerSettings;
  readonly #running = new Map<string, RunningPoller>();
  readonly #cooldownUntil = new Map<string, number>();
  #stopped = false;
  #scanning: Promise<void> | null = null;
  #timer: NodeJS.Timeout | null = null;

  constructor(settings: PollerSettings) {
    this.#settings = settings;
  }

  get owner(): string {
    return this.#settings.owner;
  }

  start(): void {
    void this.rescan().finally(() => this.#scheduleRescan());
  }

  held(): string[] {
    return [...this.#running.keys()];
  }

  rescan(): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    this.#scanning ??= this.#scanOnce().finally(() => {
      this.#scanning = null;
    });
    return this.#scanning;
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    await this.#scanning;
    await Promise.all([...this.#running.keys()].map((botId) => this.#halt(botId)));
  }

  #scheduleRescan(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      void this.rescan().finally(() => this.#scheduleRescan());
    }, this.#settings.rescanIntervalMs);
    this.#timer.unref();
  }

  async #scanOnce(): Promise<void> {
    let bots: PolledBot[];
    try {
      bots = await this.#settings.listBots();
    } catch (error) {
      this.#settings.log.warn({ err: error }, 'telegram pollers could not list the bots');
      return;
    }
    if (this.#stopped) return;
    const wanted = new Map(bots.map((bot) => [bot.botId, bot]));
    await this.#haltUnwanted(wanted);
    await this.#takeFreeBots([...wanted.values()]);
  }

  /** A bot deleted, or its token changed: stop its poller (a changed one starts again once taken). */
  async #haltUnwanted(wanted: Map<string, PolledBot>): Promise<void> {
    await Promise.all(
      [...this.#running]
        .filter(([botId, entry]) => wanted.get(botId)?.token !== entry.token)
        .map(([botId]) => this.#halt(botId)),
    );
  }

  async #takeFreeBots(bots: PolledBot[]): Promise<void> {
    const now = Date.now();
    // In random order, so that processes with a cap share the bots out rather than race for the same.
    for (const bot of shuffle(bots)) {
      if (this.#stopped || this.#running.size >= this.#settings.maxBots) return;
      if (this.#running.has(bot.botId) || (this.#cooldownUntil.get(bot.botId) ?? 0) > now) continue;
      this.#cooldownUntil.delete(bot.botId);
      await this.#tryLock(bot);
    }
  }

  async #tryLock(bot: PolledBot): Promise<void> {
    const { redis, owner, lockTtlMs, prefix } = this.#settings;
    const lock = pollLockKey(prefix, bot.botId);
    try {
      const taken = await redis.set(lock, owner, 'PX', lockTtlMs, 'NX');
      if (taken === 'OK' && !this.#stopped) this.#launch(bot);
      else if (taken === 'OK') await scripts.releaseLock.run(redis, [lock], [owner]);
    } catch (error) {
      this.#settings.log.warn({ err: error, botId: bot.botId }, 'telegram poll lock not tried');
    }
  }

  #launch(bot: PolledBot): void {
    const controller = new AbortController();
    const coolDown = () => this.#cooldownUntil.set(bot.botId, Date.now() + this.#settings.refusedTokenCooldownMs);
    const entry: RunningPoller = { token: bot.token, controller, done: Promise.resolve() };
    entry.done = new BotPoller(bot, controller, this.#settings, coolDown)
      .run()
      .catch((error: unknown) => this.#settings.log.error({ err: error, botId: bot.botId }, 'telegram poller crashed'))
      .finally(() => {
        if (this.#running.get(bot.botId) === entry) this.#running.delete(bot.botId);
      });
    this.#running.set(bot.botId, entry);
  }

  async #halt(botId: string): Promise<void> {
    const entry = this.#running.get(botId);
    if (!entry) return;
    entry.controller.abort();
    await entry.done;
  }
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
  const pool = new PollerPool(resolveSettings(options));
  pool.start();
  return {
    owner: pool.owner,
    held: () => pool.held(),
    rescan: () => pool.rescan(),
    stop: () => pool.stop(),
  };
}
