import { createHash } from 'node:crypto';

/**
 * A short name of a bot token that reveals nothing of it. Telegram numbers updates per token, so
 * update ids are told apart (deduplicated, polled from an offset) per token key: a new token is a
 * new bot.
 */
export function tokenKey(token: string): string {
  return createHash('sha256').update(token).digest('base64url').slice(0, 12);
}

/** The dedupe key of a Telegram update in its dialog's journal. */
export function telegramDedupeKey(key: string, updateId: number): string {
  return `tg:${key}:${updateId}`;
}
