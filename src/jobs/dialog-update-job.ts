import type { DialogPatch } from '../domain/dialog.js';

export const DIALOG_UPDATE_JOB = 'update';

/**
 * One accepted postback. Its acceptance order is the BullMQ job id, which Redis assigns from one
 * counter per queue inside the same atomic step that stores the job.
 */
export interface DialogUpdateJob {
  botId: string;
  chatId: number;
  patch: DialogPatch;
}

/** Job options for dialog updates: kept a while after completion for inspection, failures kept for replay. */
export const DIALOG_UPDATE_JOB_OPTIONS = {
  attempts: 10,
  backoff: { type: 'exponential', delay: 1_000 },
  removeOnComplete: { age: 3_600, count: 10_000 },
  removeOnFail: { age: 7 * 86_400 },
} as const;

/** The acceptance order of a dialog-update job. */
export function sequenceOf(jobId: string | undefined): number {
  const seq = Number(jobId);
  if (!Number.isSafeInteger(seq) || seq <= 0) throw new Error(`dialog-update job id "${jobId}" is not a sequence number`);
  return seq;
}
