import type { TranscriptLine } from '../db/dialog-messages.js';

/** Who wrote a transcript line, as the console names them. */
export const SENDER_LABELS: Record<TranscriptLine['sender'], string> = {
  user: 'User',
  script: 'Script',
  operator: 'Operator',
};

const NAMED_ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function decodeEntity(entity: string, body: string): string {
  if (body.startsWith('#')) {
    const code = body[1] === 'x' || body[1] === 'X' ? parseInt(body.slice(2), 16) : parseInt(body.slice(1), 10);
    // A code point outside Unicode (or a surrogate) is not a character: keep the entity as written.
    return Number.isInteger(code) && code >= 0 && code <= 0x10ffff && (code < 0xd800 || code > 0xdfff)
      ? String.fromCodePoint(code)
      : entity;
  }
  return NAMED_ENTITIES[body] ?? entity;
}

/**
 * The text a reader sees of a Telegram HTML message (what the script and operators send): tags
 * dropped, then entities decoded (Telegram's named ones and numeric ones). The result is plain text,
 * to be escaped again wherever it is shown.
 */
export function telegramHtmlToText(text: string): string {
  return text
    .replace(/<[^>]*>/g, '')
    .replace(/&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[a-zA-Z]{2,4});/g, (entity, body: string) =>
      decodeEntity(entity, body),
    );
}

/** A transcript line's text for display: a user's as typed, a sent one's out of its HTML; lines without text say so. */
export function lineDisplayText(line: Pick<TranscriptLine, 'sender' | 'text'>): string {
  if (line.text === null || line.text === '') return '(no text)';
  return line.sender === 'user' ? line.text : telegramHtmlToText(line.text);
}

/** A moment as the console shows it (console.js formats live lines the same way): `2026-01-31 12:00:05 UTC`. */
export function displayTime(iso: string): string {
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC`;
}

/** What a dialog is called on a page: its name, else its @username, else its chat id. */
export function dialogLabel(dialog: { name: string | null; username: string | null; chatId: number }): string {
  if (dialog.name) return dialog.name;
  return dialog.username ? `@${dialog.username}` : `Chat ${dialog.chatId}`;
}
