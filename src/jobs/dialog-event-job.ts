import type { DialogEvent } from '../runner/dialog-inbox.js';

export const TELEGRAM_UPDATE_JOB = 'update';
export const STEP_RUN_JOB = 'run';

/**
 * Asks a worker to drain one dialog's inbox. A job that carries an event (a delay's continuation,
 * a postback's step move) first puts it into the inbox; Telegram updates are put there by whoever
 * received them, in the order they arrived.
 */
export interface DialogEventJob {
  botId: string;
  chatId: number;
  event?: DialogEvent;
}

export const DIALOG_EVENT_JOB_OPTIONS = {
  attempts: 10,
  backoff: { type: 'exponential', delay: 1_000 },
  removeOnComplete: { age: 24 * 3_600, count: 10_000 },
  removeOnFail: { age: 7 * 86_400 },
} as const;

/** Job ids may not contain ':'. */
export function telegramUpdateJobId(botId: string, updateId: number): string {
  return `tg-${botId}-${updateId}`;
}

export function delayJobId(botId: string, chatId: number, runVersion: number): string {
  return `delay-${botId}-${chatId}-${runVersion}`;
}
