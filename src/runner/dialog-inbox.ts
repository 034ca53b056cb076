import type { Redis } from 'ioredis';
import { tryLock } from '../queue/redis-lock.js';

/** Something that moves a dialog's script, in the order it was accepted. */
export type DialogEvent =
  | { type: 'telegram'; updateId: number; update: unknown }
  /** A postback moved the dialog to `stepId`; `seq` is that update's acceptance order. */
  | { type: 'step'; reason: 'postback'; stepId: string; seq: number }
  /** A delay step (`fromStepId`, scheduled by run `runVersion`) ended: continue at `stepId`. */
  | { type: 'step'; reason: 'delay'; stepId: string; fromStepId: string; runVersion: number };

export interface DialogRef {
  botId: string;
  chatId: number;
}

function inboxKey(prefix: string, dialog: DialogRef): string {
  return `${prefix}:inbox:${dialog.botId}:${dialog.chatId}`;
}

function lockKey(prefix: string, dialog: DialogRef): string {
  return `${prefix}:dialog-lock:${dialog.botId}:${dialog.chatId}`;
}

/**
 * Each dialog has an inbox (a Redis list) that events enter in acceptance order, and one drainer at
 * a time (a Redis lease), so a dialog's events are handled one by one, in order, whatever the
 * number of worker processes. An event leaves the inbox only after it was handled (at least once).
 */
export class DialogInbox {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  async push(dialog: DialogRef, event: DialogEvent): Promise<void> {
    await this.redis.rpush(inboxKey(this.prefix, dialog), JSON.stringify(event));
  }

  /**
   * Handles every event in the dialog's inbox. Returns false when another process is draining it
   * (the caller retries later, so that an inbox left by a crashed drainer is drained eventually).
   */
  async drain(dialog: DialogRef, handle: (event: DialogEvent) => Promise<void>): Promise<boolean> {
    const key = inboxKey(this.prefix, dialog);
    for (;;) {
      const lock = await tryLock(this.redis, lockKey(this.prefix, dialog));
      if (!lock) return false;
      try {
        for (;;) {
          const head = await this.redis.lindex(key, 0);
          if (head === null) break;
          await handle(JSON.parse(head) as DialogEvent);
          if (!lock.held) return false; // lost the lease mid-way: leave the rest to the new holder
          await this.redis.lpop(key);
        }
      } finally {
        await lock.release();
      }
      // An event pushed between the last read and the release would otherwise wait for the next one.
      if ((await this.redis.llen(key)) === 0) return true;
    }
  }
}
