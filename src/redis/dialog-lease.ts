import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { LuaScript } from '../outbound/fairness/lua.js';

// KEYS[1] lease, KEYS[2] dirty flag; ARGV[1] owner, ARGV[2] ttl ms.
// Takes the lease, or, when another holds it, leaves it a note that there is more to do.
// Returns 1 when taken, 0 when busy.
const ACQUIRE = new LuaScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then return 1 end
redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
return 0`);

// KEYS[1] lease, KEYS[2] dirty flag; ARGV[1] owner.
// Releases the lease unless a note says more came in meanwhile (then the note goes and the holder
// keeps the lease to look again). Returns 1 released, 0 look again, -1 the lease was not ours.
const RELEASE = new LuaScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
if redis.call('DEL', KEYS[2]) == 1 then return 0 end
redis.call('DEL', KEYS[1])
return 1`);

// KEYS[1] lease; ARGV[1] owner, ARGV[2] ttl ms.
const EXTEND = new LuaScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`);

// KEYS[1] lease; ARGV[1] owner.
const DROP = new LuaScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`);

export interface DialogLeaseHold {
  /** Whether the lease was still ours when last extended. */
  readonly held: boolean;
  /** Releases the lease, or returns false when more came in meanwhile (the lease is kept: look again). */
  releaseIfDone(): Promise<boolean>;
  /** Releases the lease whatever came in (after a failure: the caller's job retries). */
  drop(): Promise<void>;
}

/**
 * One handler at a time per dialog, across every worker process: a Redis lease (SET NX PX, extended
 * while held). A process that finds the lease taken leaves a note instead of waiting; the holder
 * reads the note before it lets go and looks for new inputs again, so no wake-up is lost.
 */
export class DialogLease {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly ttlMs = 30_000,
  ) {}

  private keys(botId: string, chatId: number): [string, string] {
    const base = `${this.prefix}:dialog-lease:{${botId}:${chatId}}`;
    return [base, `${base}:dirty`];
  }

  async acquire(botId: string, chatId: number): Promise<DialogLeaseHold | null> {
    const [lease, dirty] = this.keys(botId, chatId);
    const owner = randomUUID();
    const taken = await ACQUIRE.run(this.redis, [lease, dirty], [owner, String(this.ttlMs)]);
    if (taken !== 1) return null;
    let held = true;
    const timer = setInterval(() => {
      EXTEND.run(this.redis, [lease], [owner, String(this.ttlMs)]).then(
        (result) => {
          if (result !== 1) held = false;
        },
        () => undefined,
      );
    }, Math.max(500, Math.floor(this.ttlMs / 3)));
    timer.unref();
    const stop = () => {
      clearInterval(timer);
      held = false;
    };
    return {
      get held() {
        return held;
      },
      releaseIfDone: async () => {
        const result = await RELEASE.run(this.redis, [lease, dirty], [owner]);
        if (result === 0) return false;
        stop();
        return true;
      },
      drop: async () => {
        stop();
        await DROP.run(this.redis, [lease], [owner]);
      },
    };
  }
}
