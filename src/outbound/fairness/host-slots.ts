import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { LuaScript, NOW_MS, requirePositiveInt } from './lua.js';

// KEYS[1] lease set; ARGV: token, maxPerHost, leaseMs. Drops expired leases, then takes one if
// fewer than maxPerHost are live. Returns 1 when taken, 0 when the host is full.
const ACQUIRE = new LuaScript(`${NOW_MS}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
local lease = tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
if redis.call('PTTL', KEYS[1]) < lease then redis.call('PEXPIRE', KEYS[1], lease) end
return 1`);

// KEYS[1] lease set; ARGV: token, leaseMs. Pushes a still-live lease's expiry out by leaseMs.
const EXTEND = new LuaScript(`${NOW_MS}
local expiry = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]))
if not expiry or expiry <= now then return 0 end
local lease = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], 'XX', now + lease, ARGV[1])
if redis.call('PTTL', KEYS[1]) < lease then redis.call('PEXPIRE', KEYS[1], lease) end
return 1`);

// KEYS[1] lease set. Live leases.
const COUNT = new LuaScript(`${NOW_MS}
return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')`);

export interface HostSlotsOptions {
  /** Key prefix; keys are `${prefix}:slots:{host}`. */
  prefix: string;
  /** Deliveries to one host in flight at once, across all processes. */
  maxPerHost: number;
  /**
   * How long a slot stays taken without release or extend. A crashed holder's slot frees itself
   * after this; pick it above the longest delivery attempt (or call `extend()` while working).
   */
  leaseMs: number;
}

/** One taken per-host slot. */
export interface Slot {
  readonly host: string;
  /** Gives the slot back. Idempotent; a no-op once the lease has expired. */
  release(): Promise<void>;
  /** Renews the lease for another `leaseMs`; false when it had already expired (slot lost). */
  extend(): Promise<boolean>;
}

/**
 * A per-host concurrency limit shared by all processes: a Redis sorted set of leases per host,
 * scored by expiry (Redis server time), taken in one Lua script that first drops expired leases.
 */
export class HostSlots {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #maxPerHost: number;
  readonly #leaseMs: number;

  constructor(redis: Redis, options: HostSlotsOptions) {
    this.#redis = redis;
    this.#prefix = options.prefix;
    this.#maxPerHost = requirePositiveInt('maxPerHost', options.maxPerHost);
    this.#leaseMs = requirePositiveInt('leaseMs', options.leaseMs);
  }

  /** The Redis key holding `host`'s leases (hash-tagged by host, Cluster-safe). */
  key(host: string): string {
    return `${this.#prefix}:slots:{${host}}`;
  }

  /** Takes a slot for `host`, or null when `maxPerHost` live leases exist already. */
  async tryAcquire(host: string): Promise<Slot | null> {
    const key = this.key(host);
    const token = randomBytes(12).toString('base64url');
    const taken = await ACQUIRE.run(this.#redis, [key], [token, this.#maxPerHost, this.#leaseMs]);
    if (taken !== 1) return null;
    let released = false;
    return {
      host,
      release: async () => {
        if (released) return;
        released = true;
        await this.#redis.zrem(key, token);
      },
      extend: async () => {
        if (released) return false;
        return (await EXTEND.run(this.#redis, [key], [token, this.#leaseMs])) === 1;
      },
    };
  }

  /** Live leases for `host` (for metrics and tests). */
  async inUse(host: string): Promise<number> {
    return Number(await COUNT.run(this.#redis, [this.key(host)], []));
  }
}

/**
 * A per-process cap on deliveries to one host: a cheap synchronous first gate before the shared
 * Redis one, so one process never spends all its concurrency on a single host.
 */
export class LocalHostLimiter {
  readonly #maxPerHost: number;
  readonly #inUse = new Map<string, number>();

  constructor(maxPerHost: number) {
    this.#maxPerHost = requirePositiveInt('maxPerHost', maxPerHost);
  }

  /** Takes a slot for `host`; false when this process already has `maxPerHost` in flight. */
  tryAcquire(host: string): boolean {
    const used = this.#inUse.get(host) ?? 0;
    if (used >= this.#maxPerHost) return false;
    this.#inUse.set(host, used + 1);
    return true;
  }

  /** Gives back one slot taken by `tryAcquire`; extra releases are ignored. */
  release(host: string): void {
    const used = this.#inUse.get(host) ?? 0;
    if (used <= 1) this.#inUse.delete(host);
    else this.#inUse.set(host, used - 1);
  }

  inUse(host: string): number {
    return this.#inUse.get(host) ?? 0;
  }

  /** Whether `tryAcquire` would refuse now (a cheap look before any I/O). */
  isFull(host: string): boolean {
    return this.inUse(host) >= this.#maxPerHost;
  }
}
