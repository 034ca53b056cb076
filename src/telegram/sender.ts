import { setTimeout as delay } from 'node:timers/promises';
import type { InlineKeyboardButton, InlineKeyboardMarkup, UserFromGetMe } from 'grammy/types';
import type { Logger } from '../config/log.js';
import type { BotRegistry } from './bot-registry.js';
import { splitMessage, TELEGRAM_MESSAGE_LIMIT } from './message-splitting.js';
import { redactTokens, toTelegramApiError, type TelegramApiError } from './safe-errors.js';
import type { SendLimiter } from './send-limiter.js';
import { recordTelegramCall, recordTelegramThrottle, telegramOutcome } from '../observability/outcomes.js';

/** A button under a message: either a callback (its data comes back as a `button` event) or a link. */
export type MessageButton = { text: string; callbackData: string } | { text: string; url: string };

/** Buttons: a button alone is a row of its own; an array is one row. */
export type ButtonLayout = ReadonlyArray<MessageButton | ReadonlyArray<MessageButton>>;

/** What a sender needs to know of a bot. */
export interface BotCredentials {
  botId: string;
  token: string;
  botInfo: UserFromGetMe;
}

export type SendResult =
  | { ok: true; messageIds: number[] }
  /** The user blocked the bot, deleted their account, or the chat is gone. Parts sent before are listed. */
  | { ok: false; blocked: true; reason: string; messageIds: number[] };

/** Telegram allows callback data of 1–64 bytes. */
const CALLBACK_DATA_MAX_BYTES = 64;

/**
 * A message that could not be sent. The message names the method, Telegram's code and
 * description, never the token. `retryable` tells a job runner whether a later attempt may
 * succeed (`retryAfterMs` when Telegram said how long to wait); `sentMessageIds` lists the parts of
 * a long message already delivered (retrying the whole text would repeat them).
 */
export class TelegramSendError extends Error {
  readonly method = 'sendMessage';
  readonly errorCode?: number;
  readonly description: string;
  readonly retryable: boolean;
  readonly retryAfterMs?: number;
  readonly attempts: number;
  readonly sentMessageIds: number[];

  constructor(details: {
    errorCode?: number;
    description: string;
    retryable: boolean;
    retryAfterMs?: number;
    attempts: number;
    sentMessageIds?: number[];
  }) {
    const description = redactTokens(details.description);
    const code = details.errorCode === undefined ? '' : `${details.errorCode}: `;
    super(`Telegram sendMessage failed after ${details.attempts} attempt(s) (${code}${description})`);
    this.name = 'TelegramSendError';
    if (details.errorCode !== undefined) this.errorCode = details.errorCode;
    this.description = description;
    this.retryable = details.retryable;
    if (details.retryAfterMs !== undefined) this.retryAfterMs = details.retryAfterMs;
    this.attempts = details.attempts;
    this.sentMessageIds = details.sentMessageIds ?? [];
  }
}

/**
 * Whether an error answer means the chat cannot be written to any more: every 403 (blocked by
 * the user, user deactivated, kicked from the group, cannot initiate a conversation) and the 400s
 * for a chat that does not exist.
 */
function isBlockedAnswer(errorCode: number | undefined, description: string | undefined): boolean {
  if (errorCode === 403) return true;
  if (errorCode !== 400) return false;
  const text = (description ?? '').toLowerCase();
  return (
    text.includes('chat not found') ||
    text.includes('user is deactivated') ||
    text.includes('bot was blocked') ||
    text.includes('peer_id_invalid')
  );
}

export interface TelegramSenderOptions {
  registry: BotRegistry;
  /** Shared send limits; null sends at once (tests, or a fake server in a benchmark). */
  limiter: SendLimiter | null;
  log?: Logger;
  /** Longest 429 `retry_after` waited in place; a longer one throws a retryable error. Default 60 s. */
  maxRetryAfterMs?: number;
  /** 429 answers waited out per part before giving up. Default 5. */
  maxThrottledRetries?: number;
  /** Attempts per part for network errors and 5xx answers. Default 4. */
  maxAttempts?: number;
  /** First backoff after a network error or 5xx; doubled each time, ±20 % jitter. Default 500 ms. */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** Part length; Telegram's limit unless a test wants smaller parts. */
  partLimit?: number;
  /** For tests. */
  sleep?: (ms: number) => Promise<void>;
}

function byteLength(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

/** Builds Telegram's inline keyboard; throws TelegramSendError (not retryable) for a bad button. */
function inlineKeyboard(buttons: ButtonLayout): InlineKeyboardMarkup | undefined {
  const invalid = (description: string) => new TelegramSendError({ description, retryable: false, attempts: 0 });
  const rows: InlineKeyboardButton[][] = [];
  for (const item of buttons) {
    const row = (Array.isArray(item) ? item : [item]) as ReadonlyArray<MessageButton>;
    const built: InlineKeyboardButton[] = [];
    for (const button of row) {
      if (typeof button.text !== 'string' || button.text.trim() === '') throw invalid('a button has no text');
      if ('callbackData' in button) {
        const size = byteLength(button.callbackData);
        if (size < 1 || size > CALLBACK_DATA_MAX_BYTES) {
          throw invalid(
            `button "${button.text}" has callback data of ${size} bytes (1-${CALLBACK_DATA_MAX_BYTES} allowed)`,
          );
        }
        built.push({ text: button.text, callback_data: button.callbackData });
      } else {
        if (typeof button.url !== 'string' || button.url.trim() === '')
          throw invalid(`button "${button.text}" has no url`);
        built.push({ text: button.text, url: button.url });
      }
    }
    if (built.length > 0) rows.push(built);
  }
  return rows.length > 0 ? { inline_keyboard: rows } : undefined;
}

type PartOutcome = { sent: number } | { blocked: string };

export interface SendOptions {
  /** The caller already booked the first part's slot (a broadcast's spare slot): it goes at once. */
  firstSlotReserved?: boolean;
}

/**
 * Sends messages the way Telegram wants them sent: within the shared limits, split when long,
 * 429s waited out (and the whole bot held for them), blocked chats reported rather than retried,
 * and errors free of the token.
 */
export class TelegramSender {
  private readonly registry: BotRegistry;
  private readonly limiter: SendLimiter | null;
  private readonly log: Logger | undefined;
  private readonly maxRetryAfterMs: number;
  private readonly maxThrottledRetries: number;
  private readonly maxAttempts: number;
  private readonly backoffBaseMs: number;
  private readonly backoffMaxMs: number;
  private readonly partLimit: number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(options: TelegramSenderOptions) {
    this.registry = options.registry;
    this.limiter = options.limiter;
    this.log = options.log;
    this.maxRetryAfterMs = options.maxRetryAfterMs ?? 60_000;
    this.maxThrottledRetries = options.maxThrottledRetries ?? 5;
    this.maxAttempts = Math.max(1, options.maxAttempts ?? 4);
    this.backoffBaseMs = options.backoffBaseMs ?? 500;
    this.backoffMaxMs = options.backoffMaxMs ?? 10_000;
    this.partLimit = options.partLimit ?? TELEGRAM_MESSAGE_LIMIT;
    this.sleep = options.sleep ?? ((ms) => delay(ms));
  }

  /** The messages `sendMessage` sends for a text, in order (one per message id it resolves). */
  parts(text: string): string[] {
    return splitMessage(text, this.partLimit);
  }

  /**
   * Sends an HTML-mode text with optional buttons (under the last part when the text is split).
   * Resolves `{ ok: true, messageIds }`, or `{ ok: false, blocked: true }` when the chat cannot be
   * written to; throws TelegramSendError otherwise.
   */
  async sendMessage(
    bot: BotCredentials,
    chatId: number | string,
    text: string,
    buttons: ButtonLayout = [],
    options: SendOptions = {},
  ): Promise<SendResult> {
    const keyboard = inlineKeyboard(buttons);
    if (text.trim() === '') {
      throw new TelegramSendError({ description: 'message text is empty', retryable: false, attempts: 0 });
    }
    const parts = this.parts(text);
    const messageIds: number[] = [];
    for (const [index, part] of parts.entries()) {
      const replyMarkup = index === parts.length - 1 ? keyboard : undefined;
      const prepaid = index === 0 && options.firstSlotReserved === true;
      const outcome = await this.sendPart(bot, chatId, part, replyMarkup, messageIds, prepaid);
      if ('blocked' in outcome) return { ok: false, blocked: true, reason: outcome.blocked, messageIds };
      messageIds.push(outcome.sent);
    }
    return { ok: true, messageIds };
  }

  /**
   * Answers a button press (stops the spinner on the user's button). Best effort: resolves false
   * when Telegram refuses (the query is older than about 15 minutes, say) or cannot be reached.
   */
  async answerCallbackQuery(bot: BotCredentials, callbackQueryId: string, text?: string): Promise<boolean> {
    try {
      await this.registry.get(bot.token, bot.botInfo).api.answerCallbackQuery(callbackQueryId, text ? { text } : {});
      recordTelegramCall('answerCallbackQuery', 'ok');
      return true;
    } catch (raw) {
      const error = toTelegramApiError(raw, 'answerCallbackQuery', bot.token);
      recordTelegramCall('answerCallbackQuery', telegramOutcome({ ok: false, errorCode: error.errorCode }));
      this.log?.debug(
        { botId: bot.botId, errorCode: error.errorCode, description: error.description },
        'telegram callback query not answered',
      );
      return false;
    }
  }

  private async sendPart(
    bot: BotCredentials,
    chatId: number | string,
    text: string,
    replyMarkup: InlineKeyboardMarkup | undefined,
    sentBefore: readonly number[],
    prepaid = false,
  ): Promise<PartOutcome> {
    const api = this.registry.get(bot.token, bot.botInfo).api;
    let attempts = 0;
    let failures = 0;
    let throttled = 0;
    for (;;) {
      if (this.limiter && !(prepaid && attempts === 0)) {
        const wait = await this.limiter.reserve(bot.botId, chatId);
        if (wait > 0) await this.sleep(wait);
      }
      attempts++;
      let error: TelegramApiError;
      try {
        const message = await api.sendMessage(chatId, text, {
          parse_mode: 'HTML',
          ...(replyMarkup ? { reply_markup: replyMarkup } : {}),
        });
        recordTelegramCall('sendMessage', 'ok');
        return { sent: message.message_id };
      } catch (raw) {
        error = toTelegramApiError(raw, 'sendMessage', bot.token);
      }
      const blocked = isBlockedAnswer(error.errorCode, error.description);
      recordTelegramCall('sendMessage', telegramOutcome({ ok: false, errorCode: error.errorCode, blocked }));

      const fail = (retryable: boolean, retryAfterMs?: number) =>
        new TelegramSendError({
          ...(error.errorCode !== undefined ? { errorCode: error.errorCode } : {}),
          description: error.description ?? error.message,
          retryable,
          ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
          attempts,
          sentMessageIds: [...sentBefore],
        });

      if (error.errorCode === 429) {
        throttled++;
        const retryAfterMs = Math.max(0, error.retryAfter ?? 1) * 1000;
        recordTelegramThrottle(retryAfterMs / 1000);
        this.log?.warn({ botId: bot.botId, chatId, retryAfterMs, throttled }, 'telegram throttled the bot');
        // The whole bot slows down, as Telegram asks: every process's next sends wait for the hold.
        await this.limiter
          ?.hold(bot.botId, retryAfterMs)
          .catch((holdError: unknown) =>
            this.log?.warn({ err: holdError, botId: bot.botId }, 'could not hold the bot after a 429'),
          );
        if (retryAfterMs > this.maxRetryAfterMs || throttled > this.maxThrottledRetries) throw fail(true, retryAfterMs);
        await this.sleep(retryAfterMs);
        continue;
      }
      if (blocked) {
        return { blocked: error.description ?? `error ${error.errorCode}` };
      }
      const retryable = error.errorCode === undefined || error.errorCode >= 500;
      failures++;
      if (!retryable || failures >= this.maxAttempts) throw fail(retryable);
      const backoff = Math.min(this.backoffMaxMs, this.backoffBaseMs * 2 ** (failures - 1));
      const jittered = Math.round(backoff * (0.8 + Math.random() * 0.4));
      this.log?.warn(
        {
          botId: bot.botId,
          chatId,
          errorCode: error.errorCode,
          description: error.description,
          attempts,
          backoffMs: jittered,
        },
        'telegram send failed, retrying',
      );
      await this.sleep(jittered);
    }
  }
}
