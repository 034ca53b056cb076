import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

/**
 * Lua prelude shared by the fairness scripts: `now` is Redis server time in ms, so every process
 * judges lease and pause expiry by one clock.
 */
export const NOW_MS = `local __t = redis.call('TIME')
local now = tonumber(__t[1]) * 1000 + math.floor(tonumber(__t[2]) / 1000)
`;

/** A Lua script run by EVALSHA, falling back to EVAL when the server does not know it yet. */
export class LuaScript {
  readonly sha: string;

  constructor(readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  async run(redis: Redis, keys: string[], args: Array<string | number>): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (failure) {
      if (failure instanceof Error && failure.message.startsWith('NOSCRIPT')) {
        return redis.eval(this.source, keys.length, ...keys, ...args);
      }
      throw failure;
    }
  }
}

export function requirePositiveInt(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value <= 0) throw new RangeError(`${name} must be a positive integer, got ${value}`);
  return value;
}
