import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';

// Deletes / extends the lock only while it is still ours.
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;
const EXTEND = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`;

export interface HeldLock {
  /** Whether the lock was still ours when extended last. */
  readonly held: boolean;
  release(): Promise<void>;
}

/**
 * A lease in Redis: taken with SET NX PX, extended while held, released by its owner only. A holder
 * that dies loses it after `ttlMs`.
 */
export async function tryLock(redis: Redis, key: string, ttlMs = 30_000): Promise<HeldLock | null> {
  const owner = randomUUID();
  if ((await redis.set(key, owner, 'PX', ttlMs, 'NX')) !== 'OK') return null;
  let held = true;
  const timer = setInterval(() => {
    redis.eval(EXTEND, 1, key, owner, String(ttlMs)).then(
      (result) => {
        if (result !== 1) held = false;
      },
      () => undefined,
    );
  }, Math.max(1_000, Math.floor(ttlMs / 3)));
  timer.unref();
  return {
    get held() {
      return held;
    },
    release: async () => {
      clearInterval(timer);
      held = false;
      await redis.eval(RELEASE, 1, key, owner);
    },
  };
}
