import type { Knex } from 'knex';
import { findClicksByClickId, type ClickRef } from '../db/clicks.js';
import { GroupCommit } from '../db/group-commit.js';
import { loadBotPostbackView, loadEndpointView, type EndpointView } from '../db/postback-endpoints.js';
import type { BotPostbackView } from '../domain/postback.js';
import type { Invalidation } from '../redis/invalidation.js';
import { LoadingCache } from '../util/loading-cache.js';
import { LruCache } from '../util/lru-cache.js';

/**
 * The web tier's cached view of endpoints and bots. Entries live `ttlMs` (unknown endpoints
 * `negativeTtlMs`) and are dropped at once by an invalidation from the management API.
 */
export class PostbackViewCache {
  private readonly endpoints: LoadingCache<string, EndpointView | null>;
  private readonly bots: LoadingCache<string, BotPostbackView>;
  /** Claimed clicks' chats: a claim never changes, so these are kept until evicted. */
  private readonly claimedClicks: LruCache<string, number>;
  private readonly clickReads = new Map<string, Promise<{ clickId: string; chatId: number | null } | null>>();
  private readonly clickLookups: GroupCommit<ClickRef, { clickId: string; chatId: number | null } | null>;

  constructor(
    private readonly db: Knex,
    ttlMs = 60_000,
    negativeTtlMs = 5_000,
    capacity = 50_000,
  ) {
    this.endpoints = new LoadingCache(capacity, (view) => (view ? ttlMs : negativeTtlMs));
    this.bots = new LoadingCache(capacity, () => ttlMs);
    this.claimedClicks = new LruCache(capacity);
    this.clickLookups = new GroupCommit((refs) => findClicksByClickId(db, refs), 500, 2);
  }

  /**
   * Where a postback by click id goes: the chat that claimed the click, null while nobody has
   * claimed it, or undefined for a click id the bot does not have.
   */
  async clickChat(botId: string, clickid: string): Promise<number | null | undefined> {
    const key = `${botId}:${clickid}`;
    const known = this.claimedClicks.get(key);
    if (known !== undefined) return known;
    // A burst of postbacks for a click this process has not seen yet shares one read, and the
    // reads of concurrent postbacks go to Postgres together (one statement while another runs).
    let reading = this.clickReads.get(key);
    if (!reading) {
      reading = this.clickLookups.submit({ botId, clickid }).finally(() => this.clickReads.delete(key));
      this.clickReads.set(key, reading);
    }
    const found = await reading;
    if (!found) return undefined;
    if (found.chatId !== null) this.claimedClicks.set(key, found.chatId);
    return found.chatId;
  }

  endpoint(id: string): Promise<EndpointView | null> {
    return this.endpoints.get(id, () => loadEndpointView(this.db, id));
  }

  bot(botId: string): Promise<BotPostbackView> {
    return this.bots.get(botId, () => loadBotPostbackView(this.db, botId));
  }

  invalidate(message: Invalidation): void {
    if (message.kind === 'bot') this.bots.delete(message.id);
    else this.endpoints.delete(message.id);
  }

  clear(): void {
    this.endpoints.clear();
    this.bots.clear();
  }
}
