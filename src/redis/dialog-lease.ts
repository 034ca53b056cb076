import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { scripts } from './scripts.js';

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
    /** QUEUE_LOCK_MS: a dead holder's lease is free again this long after its last extension. */
    private readonly ttlMs = 10_000,
  ) {}

  private keys(botId: string, chatId: number): [string, string] {
    const base = `${this.prefix}:dialog-lease:{${botId}:${chatId}}`;
    return [base, `${base}:dirty`];
  }

  async acquire(botId: string, chatId: number): Promise<DialogLeaseHold | null> {
    const [lease, dirty] = this.keys(botId, chatId);
    const owner = randomUUID();
    const taken = await scripts.acquireDialogLease.run(this.redis, [lease, dirty], [owner, String(this.ttlMs)]);
    if (taken !== 1) return null;
    let held = true;
    const timer = setInterval(
      () => {
        scripts.extendLock.run(this.redis, [lease], [owner, String(this.ttlMs)]).then(
          (result) => {
            if (result !== 1) held = false;
          },
          () => undefined,
        );
      },
      Math.max(500, Math.floor(this.ttlMs / 3)),
    );
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
        const result = await scripts.releaseDialogLeaseIfDone.run(this.redis, [lease, dirty], [owner]);
        if (result === 0) return false;
        stop();
        return true;
      },
      drop: async () => {
        stop();
        await scripts.releaseLock.run(this.redis, [lease], [owner]);
      },
    };
  }
}
