import type { UserFromGetMe } from 'grammy/types';
import { DomainError } from '../../domain/errors.js';
import {
  createBot,
  generateWebhookSecret,
  getMe,
  registerWebhook,
  removeWebhook,
  TelegramApiError,
  usesWebhook,
} from '../../telegram/index.js';

export interface TelegramConnection {
  botInfo: UserFromGetMe;
  secret: string;
  /** Registers the webhook once the bot's id is known (https PUBLIC_URL only; else workers long-poll). */
  register(botId: string): Promise<void>;
}

function refusal(error: unknown): never {
  if (error instanceof TelegramApiError && error.answered && error.errorCode! < 500 && error.errorCode !== 429) {
    throw new DomainError(
      'unprocessable',
      'invalid_telegram_token',
      `Telegram refused the token (${error.errorCode}: ${error.description ?? ''})`,
      { param: 'telegramToken' },
    );
  }
  throw new DomainError('unavailable', 'telegram_unavailable', 'Telegram could not be reached; retry later', {
    cause: error,
  });
}

/** Checks a bot token with one getMe call and prepares its webhook. */
export async function connectTelegram(token: string, apiRoot: string, publicUrl: string): Promise<TelegramConnection> {
  const botInfo = await getMe(token, apiRoot).catch(refusal);
  const secret = generateWebhookSecret();
  return {
    botInfo,
    secret,
    register: async (botId) => {
      if (!usesWebhook(publicUrl)) return;
      await registerWebhook(createBot(token, botInfo, apiRoot), publicUrl, botId, secret).catch(refusal);
    },
  };
}

/**
 * Best effort, after a bot is deleted: asks Telegram to stop posting its updates here (they would
 * only be refused). Resolves false when Telegram could not be told within `timeoutMs`.
 */
export async function disconnectTelegram(
  token: string,
  botInfo: UserFromGetMe,
  apiRoot: string,
  publicUrl: string,
  timeoutMs = 3_000,
): Promise<boolean> {
  if (!usesWebhook(publicUrl)) return true;
  return removeWebhook(createBot(token, botInfo, apiRoot), AbortSignal.timeout(timeoutMs)).then(
    () => true,
    () => false,
  );
}
