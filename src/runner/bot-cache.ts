import type { Knex } from 'knex';
import { findBot } from '../db/bots.js';
import { listDestinations } from '../db/destinations.js';
import { loadScript } from '../db/script-steps.js';
import type { Destination } from '../domain/tracker/destinations.js';
import type { EngineScript } from '../domain/engine/index.js';
import { parseBotInfo, type BotCredentials } from '../telegram/index.js';
import { LoadingCache } from '../util/loading-cache.js';

/** What handling a dialog's inputs needs of its bot. */
export interface BotForRun {
  credentials: BotCredentials | null;
  timezone: string;
  script: EngineScript | null;
  /** Where claimed clicks and conversions are sent onwards. */
  destinations: Destination[];
}

/**
 * A worker's cache of bots and their scripts, so that an input reads neither. Entries are dropped
 * at once when the management API publishes a change of the bot (its token, its script), and
 * expire after `ttlMs` regardless. Beyond `maxEntries` bots the least recently used is dropped.
 */
export class BotCache {
  private readonly entries: LoadingCache<string, BotForRun | null>;

  constructor(
    private readonly db: Knex,
    ttlMs = 60_000,
    maxEntries = 10_000,
  ) {
    this.entries = new LoadingCache(maxEntries, () => ttlMs);
  }

  get(botId: string): Promise<BotForRun | null> {
    return this.entries.get(botId, () => this.load(botId));
  }

  invalidate(botId: string): void {
    this.entries.delete(botId);
  }

  clear(): void {
    this.entries.clear();
  }

  private async load(botId: string): Promise<BotForRun | null> {
    const [bot, script, destinations] = await Promise.all([
      findBot(this.db, botId),
      loadScript(this.db, botId),
      listDestinations(this.db, botId),
    ]);
    if (!bot) return null;
    const botInfo = parseBotInfo(bot.telegramInfo);
    return {
      credentials: bot.telegramToken && botInfo ? { botId, token: bot.telegramToken, botInfo } : null,
      timezone: bot.timezone,
      script,
      destinations,
    };
  }
}
