import type { Knex } from 'knex';
import { findSigningSecret } from '../db/deliveries.js';
import { LruCache } from '../util/lru-cache.js';

/** Bots whose secrets one process keeps at most. */
const CAPACITY = 10_000;

/**
 * Each bot's signing secret, read at most once a second per process (a new secret applies within
 * a second). The one source of the secret that signs a delivery.
 */
export class SigningSecrets {
  private readonly cache = new LruCache<string, { secret: Promise<string | null>; at: number }>(CAPACITY);

  constructor(private readonly db: Knex) {}

  get(botId: string): Promise<string | null> {
    const hit = this.cache.get(botId);
    if (hit && Date.now() - hit.at < 1_000) return hit.secret;
    const secret = findSigningSecret(this.db, botId);
    const entry = { secret, at: Date.now() };
    this.cache.set(botId, entry);
    // A failed read is not kept: the next delivery of the bot reads again.
    secret.catch(() => {
      if (this.cache.get(botId) === entry) this.cache.delete(botId);
    });
    return secret;
  }
}
