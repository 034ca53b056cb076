import type { Knex } from 'knex';
import { findClicksByClickId, type ClickRef } from '../db/clicks.js';
import { GroupCommit } from '../db/group-commit.js';
import { listEndpointIds, loadBotPostbackView, loadEndpointView, type EndpointView } from '../db/postback-endpoints.js';
import type { BotPostbackView } from '../domain/postback.js';
import type { Invalidation } from '../redis/invalidation.js';
import { LoadingCache } from '../util/loading-cache.js';
import { LruCache } from '../util/lru-cache.js';

export interface KnownIdsOptions {
  /** How often the whole list is read again (it also is after an invalidation reset). Default 30 s. */
  refreshMs?: number;
  /** Lookups of ids not in the list allowed a second (and at once), for ids created meanwhile. Defaults 5 and 20. */
  missesPerSecond?: number;
  missBurst?: number;
}

/**
 * Every id of a table, held in memory, so that a flood of made-up ids (postback URLs, Telegram
 * webhook paths) costs no query each: an id not in the list may be looked up in Postgres only
 * within a small budget a second (it may have been created since the list was read); past it, it
 * is taken as unknown. Ids created elsewhere are added by invalidation as soon as it arrives.
 */
export class KnownIds {
  private ids = new Set<string>();
  private loadedAt = Number.NEGATIVE_INFINITY;
  private loading: Promise<void> | null = null;
  private addedWhileLoading: string[] = [];
  private tokens: number;
  private tokensAt = Date.now();
  private readonly refreshMs: number;
  private readonly missesPerSecond: number;
  private readonly missBurst: number;

  constructor(
    private readonly loadAll: () => Promise<string[]>,
    options: KnownIdsOptions = {},
  ) {
    this.refreshMs = options.refreshMs ?? 30_000;
    this.missesPerSecond = options.missesPerSecond ?? 5;
    this.missBurst = options.missBurst ?? 20;
    this.tokens = this.missBurst;
  }

  /**
   * Whether Postgres should be asked about `id`: it is known, or it is not and the budget allows a
   * look. Answered at once (no promise) once the list is loaded: this is on every postback's path.
   */
  mayExist(id: string): boolean | Promise<boolean> {
    const first = this.fresh();
    return first ? first.then(() => this.decide(id)) : this.decide(id);
  }

  private decide(id: string): boolean {
    return this.ids.has(id) || this.takeMiss();
  }

  /** An id that exists (found, or created elsewhere). */
  add(id: string): void {
    this.ids.add(id);
    if (this.loading) this.addedWhileLoading.push(id);
  }

  /** Invalidations may have been missed: the list is read again (in the background once there is one). */
  reset(): void {
    if (this.loadedAt !== Number.NEGATIVE_INFINITY) this.loadedAt = 0;
  }

  /** Starts reading the list again when it is stale; returns the read only while there is no list yet. */
  private fresh(): Promise<void> | null {
    if (Date.now() - this.loadedAt < this.refreshMs) return null;
    this.loading ??= this.reload().finally(() => {
      this.loading = null;
    });
    // Only the first read is waited for; later ones refresh behind the list still held.
    if (this.loadedAt === Number.NEGATIVE_INFINITY) return this.loading;
    this.loading.catch(() => undefined);
    return null;
  }

  private async reload(): Promise<void> {
    this.addedWhileLoading = [];
    const ids = new Set(await this.loadAll());
    for (const id of this.addedWhileLoading) ids.add(id);
    this.ids = ids;
    this.loadedAt = Date.now();
  }

  private takeMiss(): boolean {
    const now = Date.now();
    this.tokens = Math.min(this.missBurst, this.tokens + ((now - this.tokensAt) / 1000) * this.missesPerSecond);
    this.tokensAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/**
 * The web tier's cached view of endpoints and bots. Entries live `ttlMs` (unknown endpoints
 * `negativeTtlMs`) and are dropped at once by an invalidation from the management API. An endpoint
 * id not among the known ones is answered unknown without a query (see {@link KnownIds}).
 */
export class PostbackViewCache {
  private readonly endpoints: LoadingCache<string, EndpointView | null>;
  private readonly bots: LoadingCache<string, BotPostbackView>;
  /** Claimed clicks' chats: a claim never changes, so these are kept until evicted. */
  private readonly claimedClicks: LruCache<string, number>;
  private readonly clickReads = new Map<string, Promise<{ clickId: string; chatId: number | null } | null>>();
  private readonly clickLookups: GroupCommit<ClickRef, { clickId: string; chatId: number | null } | null>;
  private readonly endpointIds: KnownIds;

  constructor(
    private readonly db: Knex,
    ttlMs = 60_000,
    negativeTtlMs = 15_000,
    capacity = 50_000,
    knownIds: KnownIdsOptions = {},
  ) {
    this.endpointIds = new KnownIds(() => listEndpointIds(db), knownIds);
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

  async endpoint(id: string): Promise<EndpointView | null> {
    const mayExist = this.endpointIds.mayExist(id);
    if (!(typeof mayExist === 'boolean' ? mayExist : await mayExist)) return null;
    const view = await this.endpoints.get(id, () => loadEndpointView(this.db, id));
    if (view) this.endpointIds.add(id);
    return view;
  }

  bot(botId: string): Promise<BotPostbackView> {
    return this.bots.get(botId, () => loadBotPostbackView(this.db, botId));
  }

  invalidate(message: Invalidation): void {
    if (message.kind === 'bot') this.bots.delete(message.id);
    else {
      // A new endpoint: known at once, and no longer remembered as unknown.
      this.endpointIds.add(message.id);
      this.endpoints.delete(message.id);
    }
  }

  clear(): void {
    this.endpointIds.reset();
    this.endpoints.clear();
    this.bots.clear();
  }
}
