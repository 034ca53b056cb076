import type { DialogUpdateJob } from './dialog-update-job.js';
import { tokenKey } from '../telegram/token-key.js';
import { classifyUpdate } from '../telegram/update-shape.js';

/**
 * The `dialog-updates` job of a Telegram update that came through `token` (webhook or long
 * polling): the input of the chat it names. Null for an update that names no chat.
 */
export function telegramUpdateJob(botId: string, token: string, update: unknown): DialogUpdateJob | null {
  const event = classifyUpdate(update);
  if (!event) return null;
  return { botId, chatId: event.chatId, telegram: { update, tokenKey: tokenKey(token) } };
}
