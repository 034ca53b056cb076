import { randomBytes } from 'node:crypto';
import type { Bot } from 'grammy';
import { grammySignal } from './bot-registry.js';
import { toTelegramApiError } from './safe-errors.js';

/** The update kinds flowpost reads (see update-shape.ts); Telegram sends no others. */
export const ALLOWED_UPDATES = ['message', 'callback_query', 'my_chat_member'] as const;

/** Telegram's rule for `secret_token`: 1–256 of `[A-Za-z0-9_-]`. */
const WEBHOOK_SECRET_PATTERN = /^[A-Za-z0-9_-]{1,256}$/;

/** Webhooks need a public https URL; anything else (a local http URL) means long polling. */
export function usesWebhook(publicUrl: string | null | undefined): boolean {
  if (!publicUrl) return false;
  try {
    return new URL(publicUrl).protocol === 'https:';
  } catch {
    return false;
  }
}

/** Where Telegram posts a bot's updates: `<publicUrl>/telegram/<botId>`. */
export function webhookUrl(publicUrl: string, botId: string): string {
  return `${publicUrl.replace(/\/+$/, '')}/telegram/${encodeURIComponent(botId)}`;
}

/** A fresh secret for `X-Telegram-Bot-Api-Secret-Token` (43 url-safe characters). */
export function generateWebhookSecret(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * Points the bot's webhook at this deployment. Telegram then sends each update with the secret in
 * `X-Telegram-Bot-Api-Secret-Token`. Throws TelegramApiError (never holding the token).
 */
export async function registerWebhook(bot: Bot, publicUrl: string, botId: string, secret: string): Promise<void> {
  if (!usesWebhook(publicUrl)) throw new Error('a webhook needs an https PUBLIC_URL');
  if (!WEBHOOK_SECRET_PATTERN.test(secret)) throw new Error('the webhook secret must be 1-256 of [A-Za-z0-9_-]');
  try {
    await bot.api.setWebhook(webhookUrl(publicUrl, botId), {
      secret_token: secret,
      allowed_updates: [...ALLOWED_UPDATES],
    });
  } catch (error) {
    throw toTelegramApiError(error, 'setWebhook', bot.token);
  }
}

/** Removes the bot's webhook (so that getUpdates works), keeping the updates Telegram holds. */
export async function removeWebhook(bot: Bot, signal?: AbortSignal): Promise<void> {
  try {
    await bot.api.deleteWebhook({ drop_pending_updates: false }, grammySignal(signal));
  } catch (error) {
    throw toTelegramApiError(error, 'deleteWebhook', bot.token);
  }
}
