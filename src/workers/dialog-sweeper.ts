import type { Knex } from 'knex';
import { dialogsWithStaleInputs, overdueTimers } from '../db/dialog-inputs.js';
import type { DialogRef } from '../db/dialog-rows.js';
import type { DialogTimer } from '../domain/inputs/types.js';
import type { Logger } from '../config/log.js';
import { startSweepLoop } from './sweep-loop.js';

export interface DialogSweeperOptions {
  db: Knex;
  log: Logger;
  /** Wakes a dialog whose open inputs nobody is handling. */
  drain(dialog: DialogRef): Promise<void>;
  /** Journals a delay whose alarm was lost, and wakes its dialog. */
  fire(dialog: DialogRef, timer: DialogTimer): Promise<void>;
  /** Default 10 s. */
  intervalMs?: number;
  /** An open input untouched this long has lost its drain. Default 15 s. */
  staleMs?: number;
  /** A delay due this long ago has lost its alarm. Default 5 s. */
  graceMs?: number;
}

export interface DialogSweeper {
  sweepOnce(): Promise<void>;
  stop(): void;
}

/**
 * Redis only coordinates; Postgres holds every input, run and delay. The sweeper re-arms from
 * Postgres what Redis lost (its data, a failover, a crash between a commit and a queue add): open
 * inputs without a drain, delays without an alarm. (Old handled inputs, and postbacks that waited on
 * a click nobody claimed, are deleted by the retention sweeper.)
 */
export function startDialogSweeper(options: DialogSweeperOptions): DialogSweeper {
  const intervalMs = options.intervalMs ?? 10_000;
  const staleMs = options.staleMs ?? 15_000;
  const graceMs = options.graceMs ?? 5_000;
  return startSweepLoop({
    intervalMs,
    sweep: async () => {
      for (const dialog of await dialogsWithStaleInputs(options.db, staleMs, 500)) await options.drain(dialog);
      for (const due of await overdueTimers(options.db, graceMs, 500)) await options.fire(due, due.timer);
    },
    onError: (error) => options.log.warn({ err: error }, 'dialog sweep failed'),
  });
}
