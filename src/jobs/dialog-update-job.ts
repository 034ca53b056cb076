import type { DialogPatch } from '../domain/dialog.js';
import type { ConversionRequest } from '../domain/tracker/conversion.js';
import { JOB_RETENTION } from './job-retention.js';
import { QUEUES } from './queue-names.js';

export const DIALOG_UPDATE_JOB = 'update';

/**
 * One accepted input of a dialog: a postback's (or an operator's) patch, a Telegram update, or an
 * operator's message. Its acceptance order is
 * the BullMQ job id, which Redis assigns from one counter per queue inside the same atomic step that
 * stores the job; every other input of a dialog (a delay firing) draws from the same counter.
 */
export type DialogUpdateJob = ChatUpdateJob | ClickUpdateJob;

/**
 * An input of a known chat. `requestId` (any job): the X-Request-Id of the web request that queued
 * it, so the worker's log lines for the job name the same request.
 */
export type ChatUpdateJob =
  | {
      botId: string;
      chatId: number;
      patch: DialogPatch;
      /** A network's conversion (API.md §5), with the postback values it carried in `patch`. */
      conversion?: ConversionRequest;
      telegram?: undefined;
      clickid?: undefined;
      operatorMessage?: undefined;
      requestId?: string;
    }
  | {
      botId: string;
      chatId: number;
      telegram: { update: unknown; tokenKey: string };
      patch?: undefined;
      conversion?: undefined;
      clickid?: undefined;
      operatorMessage?: undefined;
      requestId?: string;
    }
  | {
      botId: string;
      chatId: number;
      /** An operator's text for the user (API.md §3, POST …/dialogs/{chatId}/messages). */
      operatorMessage: { text: string };
      patch?: undefined;
      conversion?: undefined;
      telegram?: undefined;
      clickid?: undefined;
      requestId?: string;
    };

/**
 * A postback addressed by click id to a click nobody had claimed when it was accepted: applied to
 * the dialog that claims it (at once if it is claimed by then, else when it is).
 */
export interface ClickUpdateJob {
  botId: string;
  clickid: string;
  patch: DialogPatch;
  conversion?: ConversionRequest;
  chatId?: undefined;
  telegram?: undefined;
  operatorMessage?: undefined;
  requestId?: string;
}

/** Job options for dialog updates (how long finished ones are kept: see JOB_RETENTION). */
export const DIALOG_UPDATE_JOB_OPTIONS = {
  attempts: 10,
  backoff: { type: 'exponential', delay: 1_000 },
  ...JOB_RETENTION[QUEUES.dialogUpdates],
} as const;

/** The acceptance order of a dialog-update job. */
export function sequenceOf(jobId: string | undefined): number {
  const seq = Number(jobId);
  if (!Number.isSafeInteger(seq) || seq <= 0)
    throw new Error(`dialog-update job id "${jobId}" is not a sequence number`);
  return seq;
}
