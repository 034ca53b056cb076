import type { z } from 'zod';
import { DomainError } from '../domain/errors.js';
import { CHAT_ID_PATTERN } from '../domain/postback.js';
import { findUnstorableText } from '../domain/storable-text.js';

/**
 * Refuses (400, naming where) a management API input holding text Postgres cannot store: U+0000
 * or an unpaired surrogate, in any value or key. Every body and query `parseBody` reads passes here.
 */
export function refuseUnstorableText(value: unknown): void {
  const found = findUnstorableText(value);
  if (!found) return;
  const param = found.path.map(String).join('.') || undefined;
  throw new DomainError('invalid', 'invalid_body', param ? `${param}: ${found.problem}` : found.problem, { param });
}

/** Parses a management API body with a zod schema; the first problem becomes a 400 naming its path. */
export function parseBody<T extends z.ZodType>(schema: T, value: unknown): z.infer<T> {
  refuseUnstorableText(value);
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const param = issue.path.map(String).join('.') || undefined;
  throw new DomainError('invalid', 'invalid_body', param ? `${param}: ${issue.message}` : issue.message, { param });
}

export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A chat id path parameter: an integer (Telegram's are up to 52 bits), else a 400 naming `chatId`. */
export function chatIdParam(text: string): number {
  const chatId = CHAT_ID_PATTERN.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(chatId))
    throw new DomainError('invalid', 'invalid_chat_id', 'chatId must be an integer', { param: 'chatId' });
  return chatId;
}
