import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';

/**
 * A Lua script from `src/redis/lua/<name>-<numberOfKeys>.lua` (the build copies them beside the
 * compiled modules), run by EVALSHA. Redis forgets its scripts on a restart or FLUSHALL, so on
 * NOSCRIPT it is sent whole once more (EVAL, which caches it again).
 */
export class RedisScript {
  readonly sha: string;

  constructor(
    readonly name: string,
    readonly numberOfKeys: number,
    readonly source: string,
  ) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  async run(redis: Redis, keys: string[], args: Array<string | number>): Promise<unknown> {
    if (keys.length !== this.numberOfKeys) {
      throw new RangeError(`${this.name} takes ${this.numberOfKeys} keys, got ${keys.length}`);
    }
    try {
      return await redis.evalsha(this.sha, this.numberOfKeys, ...keys, ...args);
    } catch (failure) {
      if (failure instanceof Error && failure.message.startsWith('NOSCRIPT')) {
        return redis.eval(this.source, this.numberOfKeys, ...keys, ...args);
      }
      throw failure;
    }
  }
}

function load(file: string): RedisScript {
  const match = /^(.+)-(\d+)$/.exec(file);
  if (!match) throw new Error(`Lua script file name must be <name>-<numberOfKeys>: ${file}`);
  const source = readFileSync(new URL(`./lua/${file}.lua`, import.meta.url), 'utf8');
  return new RedisScript(match[1]!, Number(match[2]), source);
}

/** Every Lua script of the project, read once when this module loads. */
export const scripts = {
  acquireDialogLease: load('acquireDialogLease-2'),
  releaseDialogLeaseIfDone: load('releaseDialogLeaseIfDone-2'),
  extendLock: load('extendLock-1'),
  releaseLock: load('releaseLock-1'),
  raiseSequenceFloor: load('raiseSequenceFloor-2'),
  saveTelegramOffset: load('saveTelegramOffset-2'),
  reserveTelegramSend: load('reserveTelegramSend-4'),
  holdTelegramBot: load('holdTelegramBot-1'),
  circuitState: load('circuitState-2'),
  circuitFailure: load('circuitFailure-3'),
  completeIdempotencyKey: load('completeIdempotencyKey-1'),
} as const;
