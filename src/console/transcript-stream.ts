import { setTimeout as sleep } from 'node:timers/promises';
import type { Knex } from 'knex';
import { listDialogMessages, type TranscriptLine } from '../db/dialog-messages.js';
import { findDialogStatus } from '../db/dialogs.js';
import type { DialogStatus } from '../domain/dialog.js';
import { lineDisplayText, SENDER_LABELS } from './display-text.js';

/** A transcript line as a page shows it: its text already plain (to be escaped where it is shown). */
export interface DisplayLine {
  id: string;
  sender: TranscriptLine['sender'];
  /** "User", "Script" or "Operator". */
  who: string;
  text: string;
  at: string;
}

/** What the dialog page's header shows that an input can change. */
export interface DialogSummary {
  status: DialogStatus;
  stepKey: string | null;
}

export type TranscriptEvent =
  | { type: 'line'; line: DisplayLine }
  | { type: 'dialog'; dialog: DialogSummary }
  /** Nothing was sent for a while: a proxy in between must not take the stream for dead. */
  | { type: 'heartbeat' };

export interface TranscriptWatch {
  db: Knex;
  botId: string;
  chatId: number;
  /** The last line the reader has; only later ones are sent. Null: the whole transcript. */
  afterId: string | null;
  signal: AbortSignal;
  emit: (event: TranscriptEvent) => void;
  /** Asked every heartbeat interval, lines or not: false ends the watch (the reader's session is over). */
  stillWanted?: () => Promise<boolean>;
  pollMs?: number;
  heartbeatMs?: number;
}

const BATCH = 100;

export function displayLine(line: TranscriptLine): DisplayLine {
  return {
    id: line.id,
    sender: line.sender,
    who: SENDER_LABELS[line.sender],
    text: lineDisplayText(line),
    at: line.at,
  };
}

/**
 * Follows a dialog by polling Postgres (every web process can serve any reader; no pub/sub to keep
 * in step with the writers): each round sends the lines after the last one sent, and the dialog's
 * status and step when they differ from what was last sent (always once, first). Resolves when
 * `signal` aborts, when the dialog is gone, or when the reader is no longer wanted; a database
 * error rejects (the reader reconnects and resumes after its last line).
 */
export async function watchTranscript(watch: TranscriptWatch): Promise<void> {
  const { db, botId, chatId, signal, emit } = watch;
  const pollMs = watch.pollMs ?? 1_000;
  const heartbeatMs = watch.heartbeatMs ?? 15_000;
  let afterId = watch.afterId;
  let lastSummary: string | undefined;
  let lastSent = Date.now();
  let lastAsked = Date.now();
  while (!signal.aborted) {
    if (watch.stillWanted && Date.now() - lastAsked >= heartbeatMs) {
      lastAsked = Date.now();
      if (!(await watch.stillWanted())) return;
    }
    const summary: DialogSummary | null = await findDialogStatus(db, botId, chatId);
    if (!summary || signal.aborted) return;
    let sent = false;
    for (;;) {
      const lines = await listDialogMessages(db, { botId, chatId }, { afterId, limit: BATCH });
      if (signal.aborted) return;
      for (const line of lines) emit({ type: 'line', line: displayLine(line) });
      if (lines.length > 0) {
        afterId = lines.at(-1)!.id;
        sent = true;
      }
      if (lines.length < BATCH) break;
    }
    const key = JSON.stringify(summary);
    if (key !== lastSummary) {
      emit({ type: 'dialog', dialog: summary });
      lastSummary = key;
      sent = true;
    }
    if (sent) lastSent = Date.now();
    else if (Date.now() - lastSent >= heartbeatMs) {
      emit({ type: 'heartbeat' });
      lastSent = Date.now();
    }
    await sleep(pollMs, undefined, { signal }).catch(() => undefined);
  }
}
