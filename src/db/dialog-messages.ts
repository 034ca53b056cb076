import type { Knex } from 'knex';
import type { DialogRef } from './dialog-rows.js';

// The transcript lives in dialog_messages. A user's line is written by the statement that records
// its input's decision (src/db/dialog-inputs.ts), a script's by the write of how far its run got
// (src/db/input-progress.ts): each is written once, with the write that makes a retry skip it.

/** A user's line, read from the Telegram update an input carries. */
export interface IncomingLine {
  text: string | null;
  telegramMessageId: number | null;
}

/** A message Telegram acknowledged (one part of a split text); the script's unless an operator wrote it. */
export interface OutgoingLine {
  text: string;
  telegramMessageId: number;
  sender?: 'operator';
}

/**
 * Script lines of many dialogs of a bot, written at once: a broadcast's messages Telegram
 * acknowledged, recorded with their recipients' outcomes.
 */
export async function insertScriptLines(
  db: Knex,
  botId: string,
  lines: ReadonlyArray<OutgoingLine & { chatId: number }>,
): Promise<void> {
  if (lines.length === 0) return;
  await db('dialog_messages').insert(
    lines.map((line) => ({
      bot_id: botId,
      chat_id: line.chatId,
      direction: 'out',
      sender: 'script',
      text: line.text,
      telegram_message_id: line.telegramMessageId,
    })),
  );
}

/** One line of the transcript, as the management API shows it. */
export interface TranscriptLine {
  id: string;
  direction: 'in' | 'out';
  sender: 'user' | 'script' | 'operator';
  text: string | null;
  telegramMessageId: number | null;
  at: string;
}

interface LineRow {
  id: string | number;
  direction: 'in' | 'out';
  sender: 'user' | 'script' | 'operator';
  text: string | null;
  telegram_message_id: string | number | null;
  created_at: Date;
}

/**
 * The dialog's transcript, oldest first, after line `afterId` (exclusive) when given; with
 * `newest`, the last `limit` lines instead of the first (still oldest first).
 */
export async function listDialogMessages(
  db: Knex,
  ref: DialogRef,
  options: { afterId: string | null; limit: number; newest?: boolean },
): Promise<TranscriptLine[]> {
  const query = db('dialog_messages')
    .where({ bot_id: ref.botId, chat_id: ref.chatId })
    .orderBy('id', options.newest ? 'desc' : 'asc')
    .limit(options.limit)
    .select<LineRow[]>('id', 'direction', 'sender', 'text', 'telegram_message_id', 'created_at');
  if (options.afterId !== null) void query.andWhere('id', '>', options.afterId);
  const rows = await query;
  if (options.newest) rows.reverse();
  return rows.map((row) => ({
    id: String(row.id),
    direction: row.direction,
    sender: row.sender,
    text: row.text,
    telegramMessageId: row.telegram_message_id === null ? null : Number(row.telegram_message_id),
    at: row.created_at.toISOString(),
  }));
}
