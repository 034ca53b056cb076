import { GrammyError, HttpError } from 'grammy';

/**
 * A bot token as BotFather issues it (`123456:ABC-DEF…`), alone or inside a Bot API URL
 * (`…/bot123456:ABC…/sendMessage`). Matched loosely so that anything token-like is hidden.
 */
const TOKEN_PATTERN = /\d{1,20}:[A-Za-z0-9_-]{20,}/g;
const URL_TOKEN_PATTERN = /\/bot[^/\s]+\//g;

/** Replaces every bot token (and a known token, whatever its shape) in a text. */
export function redactTokens(text: string, token?: string): string {
  let out = text;
  if (token) out = out.split(token).join('[token]');
  return out.replace(URL_TOKEN_PATTERN, '/bot[token]/').replace(TOKEN_PATTERN, '[token]');
}

/** The parts of a Bot API error answer (`{ ok: false, error_code, description, parameters }`). */
export interface TelegramErrorInfo {
  /** The Bot API method that failed. */
  method: string;
  /** HTTP-like error code from Telegram (400, 403, 429, …); absent for network failures. */
  errorCode?: number;
  /** Telegram's description, e.g. `Forbidden: bot was blocked by the user`. */
  description?: string;
  /** Seconds to wait, from a 429 answer. */
  retryAfter?: number;
  /** The chat moved to a supergroup with this id (400 answers). */
  migrateToChatId?: number;
}

/**
 * A failed Bot API call, with a message that never holds the token or the request URL. Network
 * failures (`errorCode` absent) keep only a redacted copy of the underlying error's message.
 */
export class TelegramApiError extends Error implements TelegramErrorInfo {
  readonly method: string;
  readonly errorCode?: number;
  readonly description?: string;
  readonly retryAfter?: number;
  readonly migrateToChatId?: number;

  constructor(info: TelegramErrorInfo, message?: string) {
    super(
      redactTokens(
        message ??
          (info.errorCode === undefined
            ? `Telegram ${info.method} failed: ${info.description ?? 'network error'}`
            : `Telegram ${info.method} failed (${info.errorCode}: ${info.description ?? 'no description'})`),
      ),
    );
    this.name = 'TelegramApiError';
    this.method = info.method;
    if (info.errorCode !== undefined) this.errorCode = info.errorCode;
    if (info.description !== undefined) this.description = redactTokens(info.description);
    if (info.retryAfter !== undefined) this.retryAfter = info.retryAfter;
    if (info.migrateToChatId !== undefined) this.migrateToChatId = info.migrateToChatId;
  }

  /** True when Telegram answered (as opposed to a network failure or timeout). */
  get answered(): boolean {
    return this.errorCode !== undefined;
  }
}

/**
 * Turns whatever a grammY call threw into a TelegramApiError whose message, description and
 * stack hold no token. The original error is not kept (node-fetch puts the URL, token included,
 * into its messages).
 */
export function toTelegramApiError(error: unknown, method: string, token?: string): TelegramApiError {
  if (error instanceof TelegramApiError) return error;
  if (error instanceof GrammyError) {
    return new TelegramApiError({
      method: error.method || method,
      errorCode: error.error_code,
      description: error.description,
      ...(typeof error.parameters.retry_after === 'number' ? { retryAfter: error.parameters.retry_after } : {}),
      ...(typeof error.parameters.migrate_to_chat_id === 'number'
        ? { migrateToChatId: error.parameters.migrate_to_chat_id }
        : {}),
    });
  }
  if (error instanceof HttpError) {
    const inner = error.error instanceof Error ? `: ${error.error.message}` : '';
    return new TelegramApiError({ method, description: redactTokens(`${error.message}${inner}`, token) });
  }
  const text = error instanceof Error ? error.message : String(error);
  return new TelegramApiError({ method, description: redactTokens(text, token) });
}

/**
 * An error with the same class as grammY's (so `instanceof HttpError` still works) but whose inner
 * error is a plain Error with a redacted message: node-fetch's FetchError carries the request URL,
 * and with it the token, in enumerable fields a logger would print.
 */
export function sanitizeHttpError(error: HttpError, token: string): HttpError {
  const inner = error.error;
  const name = inner instanceof Error ? inner.name : 'Error';
  const safeInner = new Error(redactTokens(inner instanceof Error ? inner.message : String(inner), token));
  safeInner.name = name;
  safeInner.stack = `${name}: ${safeInner.message}`;
  const code = (inner as { code?: unknown } | null)?.code;
  if (typeof code === 'string') (safeInner as Error & { code?: string }).code = code;
  const safe = new HttpError(redactTokens(error.message, token), safeInner);
  if (error.stack) safe.stack = redactTokens(error.stack, token);
  return safe;
}
