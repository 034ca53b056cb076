import type { OpenInput } from '../db/dialog-inputs.js';
import type { DialogRecord, DialogRef } from '../db/dialog-rows.js';

export interface DrainSnapshot {
  dialog: DialogRecord;
  inputs: OpenInput[];
}
import type { Logger } from '../config/log.js';

export interface InlineDrainsOptions {
  drain(dialog: DialogRef, snapshot?: DrainSnapshot): Promise<unknown>;
  /** Queues a drain job instead (durable, retried with backoff, taken by any process). */
  queue(dialog: DialogRef, options: { delayMs: number }): Promise<void>;
  /** Drains run at once in this process; more wait as jobs. */
  limit: number;
  log: Logger;
}

/**
 * Wakes a dialog whose input was just journaled by draining it right here, without a queue hop:
 * the input is already in Postgres, so nothing is lost if this process dies (the sweeper wakes it
 * again). A drain that fails, or one over the limit, becomes a queued job.
 */
export class InlineDrains {
  private readonly running = new Set<Promise<void>>();
  private closed = false;

  constructor(private readonly options: InlineDrainsOptions) {}

  async wake(dialog: DialogRef, snapshot?: DrainSnapshot): Promise<void> {
    if (this.closed || this.running.size >= this.options.limit) {
      await this.options.queue(dialog, { delayMs: 0 });
      return;
    }
    const run: Promise<void> = this.options
      .drain(dialog, snapshot)
      .then(
        () => undefined,
        async (error: unknown) => {
          this.options.log.warn({ err: error, ...dialog }, 'dialog drain failed; retried as a job');
          await this.options
            .queue(dialog, { delayMs: 1_000 })
            .catch((failure: unknown) =>
              this.options.log.warn({ err: failure, ...dialog }, 'dialog drain not queued; the sweeper wakes it'),
            );
        },
      )
      .finally(() => this.running.delete(run));
    this.running.add(run);
  }

  /** Stops draining here and waits for the drains running. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.running]);
  }
}
