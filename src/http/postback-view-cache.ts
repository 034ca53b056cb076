import type { Knex } from 'knex';
import { findClicksByClickId, type ClickRef } from '../db/clicks.js';
import { GroupCommit } from '../db/group-commit.js';
import { loadBotPostbackView, loadEndpointView, type EndpointView } from '../db/postback-endpoints.js';
import type { BotPostbackView } from '../domain/postback.js';
import type { Invalidation } from '../redis/invalidation.js';
import { LruCache } from '../util/lru-cache.js';

interface Entry<T> {
  value: Promise<T>;
  expires: number;
}

/**
 * The web tier's cached view of endpoints and bots. Entries live `ttlMs` (unknown endpoints
 * `negativeTtlMs`) and are dropped at once by an invalidation from the management API.
 */
export class PostbackViewCache {
  private readonly endpoints: LruCache<string, Entry<EndpointView | null>>;
  private readonly bots: LruCache<string, Entry<BotPostbackView>>;
  /** Claimed clicks' chats: a claim never changes, so these are kept until evicted. */
  private readonly claimedClicks: LruCache<string, number>;
  private readonly clickReads = new Map<string, Promise<{ clickId: string; chatId: number | null } | null>>();
  private readonly clickLookups: GroupCommit<ClickRef, { clickId: string; chatId: number | null } | null>;

  constructor(
    private readonly db: Knex,
    private readonly ttlMs = 60_000,
    private readonly negativeTtlMs = 5_000,
    capacity = 50_000,
  ) {
    this.endpoints = new LruCache(capacity);
    this.bots = new LruCache(capacity);
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
    return this.cached(
      this.endpoints,
      id,
      () => loadEndpointView(this.db, id),
      (view) => (view ? this.ttlMs : this.negativeTtlMs),
    );
  }

  bot(botId: string): Promise<BotPostbackView> {
    return this.cached(
      this.bots,
      botId,
      () => loadBotPostbackView(this.db, botId),
      () => this.ttlMs,
    );
  }

  invalidate(message: Invalidation): void {
    if (message.kind === 'bot') this.bots.delete(message.id);
    else this.endpoints.delete(message.id);
  }

  clear(): void {
    this.endpoints.clear();
    this.bots.clear();
  }

  private cached<T>(
    map: LruCache<string, Entry<T>>,
    key: string,
    load: () => Promise<T>,
    ttl: (value: T) => number,
  ): Promise<T> {
    const now = Date.now();
    const hit = map.get(key);
    if (hit && hit.expires > now) return hit.value;
    const entry: Entry<T> = { value: load(), expires: Number.POSITIVE_INFINITY };
    map.set(key, entry);
    entry.value.then(
      (value) => {
        if (map.get(key) === entry) entry.expires = Date.now() + ttl(value);
      },
      () => {
        if (map.get(key) === entry) map.delete(key);
      },
    );
    return entry.value;
  }
}
