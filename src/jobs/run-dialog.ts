import type { Redis } from 'ioredis';
import type { Knex } from 'knex';
import { journalInputs } from '../db/dialog-inputs.js';
import type { DialogRef } from '../db/dialog-rows.js';
import type { DialogTimer } from '../domain/inputs/types.js';
import type { SequenceFloor } from '../redis/sequence-floor.js';
import type { DialogRunJob } from './dialog-run-job.js';

export interface RunDialogDeps {
  db: Knex;
  redis: Redis;
  floor: SequenceFloor;
  /** Handles the dialog's journaled inputs in order (the runner's DialogDrainer). */
  drainer: { drain(dialog: DialogRef): Promise<'drained' | 'busy'> };
}

/** Journals a delay's firing as the dialog's next input, with an order drawn from the one counter. A repeat is one input. */
export async function journalTimer(
  deps: Omit<RunDialogDeps, 'drainer'>,
  dialog: DialogRef,
  timer: DialogTimer,
): Promise<number> {
  const seq = await deps.floor.next(deps.redis);
  await journalInputs(deps.db, [
    {
      ...dialog,
      seq,
      input: { kind: 'timer', scheduledBy: timer.scheduledBy, stepId: timer.stepId, stepKey: timer.stepKey },
      dedupeKey: `timer:${timer.scheduledBy}`,
    },
  ]);
  return seq;
}

/**
 * The `step-runs` processor: a delay's alarm journals the firing; then the dialog's open inputs
 * are handled in order. `busy` when another process holds the dialog (it looks again before it
 * lets go, so nothing waits for this job).
 */
export async function runDialog(data: DialogRunJob, deps: RunDialogDeps): Promise<'drained' | 'busy'> {
  const dialog = { botId: data.botId, chatId: data.chatId };
  if (data.timer) await journalTimer(deps, dialog, data.timer);
  return deps.drainer.drain(dialog);
}
