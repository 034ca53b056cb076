import type { DialogTimer } from '../domain/inputs/types.js';
import { JOB_RETENTION } from './job-retention.js';
import { QUEUES } from './queue-names.js';

export const DRAIN_JOB = 'drain';
export const TIMER_JOB = 'timer';

/**
 * On `step-runs`: handle the open inputs of one dialog, in order (`drain`), or journal a delay's
 * firing as the dialog's next input, then handle it (`timer`).
 */
export interface DialogRunJob {
  botId: string;
  chatId: number;
  timer?: DialogTimer;
}

/** Job options for step runs (how long finished ones are kept: see JOB_RETENTION). */
export const DIALOG_RUN_JOB_OPTIONS = {
  attempts: 12,
  backoff: { type: 'exponential', delay: 1_000 },
  ...JOB_RETENTION[QUEUES.stepRuns],
} as const;

/** Job ids may not contain ':'. One drain per journaled input, so a repeat of the same wake-up is one job. */
export function drainJobId(botId: string, chatId: number, seq: number | string): string {
  return `drain-${botId}-${chatId}-${seq}`;
}

export function timerJobId(botId: string, chatId: number, scheduledBy: number): string {
  return `timer-${botId}-${chatId}-${scheduledBy}`;
}
