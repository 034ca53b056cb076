import { createHmac } from 'node:crypto';
import type { Redis } from 'ioredis';
import { sameSecret } from '../util/same-secret.js';
import { newToken } from './csrf.js';

/** A console session lasts this long after its last request (sliding). */
const SESSION_TTL_SECONDS = 12 * 60 * 60;

export const SESSION_COOKIE = 'flowpost_session';

export interface ConsoleSession {
  id: string;
  /** The synchronizer token every form of this session carries. */
  csrf: string;
  createdAt: number;
}

interface StoredSession {
  csrf: string;
  createdAt: number;
  /** Which admin key signed this session in (a keyed digest): a rotated ADMIN_API_KEY ends it. */
  keyTag: string;
}

const SESSION_ID = /^[0-9a-f]{64}$/;

/** A digest that names the admin key without revealing it (keyed, so it is no plain hash of the key). */
function keyTag(adminApiKey: string): string {
  return createHmac('sha256', adminApiKey).update('flowpost console session').digest('hex');
}

/**
 * Console sessions in Redis, under the BullMQ prefix: every web process accepts them, and signing
 * out (or letting 12 hours pass without a request) ends them everywhere.
 */
export class SessionStore {
  readonly #keyTag: string;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    adminApiKey: string,
  ) {
    this.#keyTag = keyTag(adminApiKey);
  }

  #key(id: string): string {
    return `${this.prefix}:console:session:${id}`;
  }

  async create(): Promise<ConsoleSession> {
    const session = {
      id: newToken(),
      csrf: newToken(),
      createdAt: Date.now(),
    };
    const stored: StoredSession = { csrf: session.csrf, createdAt: session.createdAt, keyTag: this.#keyTag };
    await this.redis.set(this.#key(session.id), JSON.stringify(stored), 'EX', SESSION_TTL_SECONDS);
    return session;
  }

  /** The stored session, or null when it cannot be read or another admin key signed it in. */
  #ours(text: string | null): StoredSession | null {
    if (text === null) return null;
    try {
      const stored = JSON.parse(text) as StoredSession;
      return typeof stored.keyTag === 'string' && sameSecret(stored.keyTag, this.#keyTag) ? stored : null;
    } catch {
      return null;
    }
  }

  /** The live session of this id, its lifetime renewed; null when unknown, expired or from another admin key. */
  async find(id: string | undefined): Promise<ConsoleSession | null> {
    if (id === undefined || !SESSION_ID.test(id)) return null;
    const text = await this.redis.getex(this.#key(id), 'EX', SESSION_TTL_SECONDS);
    if (text === null) return null;
    const stored = this.#ours(text);
    if (!stored) {
      await this.revoke(id);
      return null;
    }
    return { id, csrf: stored.csrf, createdAt: stored.createdAt };
  }

  /**
   * Whether the session is still live, without renewing it: an open page's live stream asks this,
   * so that a tab left open does not keep a session alive past its idle expiry.
   */
  async isLive(id: string): Promise<boolean> {
    return SESSION_ID.test(id) && this.#ours(await this.redis.get(this.#key(id))) !== null;
  }

  async revoke(id: string): Promise<void> {
    if (SESSION_ID.test(id)) await this.redis.del(this.#key(id));
  }
}
