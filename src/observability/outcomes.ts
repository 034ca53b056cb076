/** How outbound webhook attempts and Bot API calls are counted: their outcome classes, and the recording. */
import { telegramCalls, telegramRetryAfter, webhookAttempts, webhookDuration } from './metrics.js';

export type WebhookOutcome = '2xx' | '3xx' | '4xx' | '5xx' | 'timeout' | 'refused' | 'network' | 'invalid' | 'aborted';

/** What an attempt result says of its outcome (a subset of AttemptResult). */
export interface AttemptSummary {
  status?: number;
  errorKind?: string;
  error?: string;
  durationMs: number;
}

/**
 * The class of one attempt: the status class when an answer arrived; `refused` for a connection
 * the target refused or the guard refused to open (a private address); otherwise the failure kind.
 */
export function webhookOutcome(result: Omit<AttemptSummary, 'durationMs'>): WebhookOutcome {
  if (result.status !== undefined && result.errorKind !== 'timeout') {
    if (result.status >= 500) return '5xx';
    if (result.status >= 400) return '4xx';
    if (result.status >= 300) return '3xx';
    return '2xx';
  }
  switch (result.errorKind) {
    case 'timeout':
      return 'timeout';
    case 'refused_target':
      return 'refused';
    case 'invalid_request':
    case 'too_large':
      return 'invalid';
    case 'aborted':
      return 'aborted';
    default:
      return /ECONNREFUSED/.test(result.error ?? '') ? 'refused' : 'network';
  }
}

export function recordWebhookAttempt(result: AttemptSummary): void {
  webhookAttempts.inc({ outcome: webhookOutcome(result) });
  webhookDuration.observe(result.durationMs / 1000);
}

export type TelegramOutcome = 'ok' | 'throttled' | 'blocked' | 'client_error' | 'server_error' | 'network';

/** The class of a Bot API answer: `errorCode` undefined with `ok` false is a network failure. */
export function telegramOutcome(
  answer: { ok: true } | { ok: false; errorCode: number | undefined; blocked?: boolean },
): TelegramOutcome {
  if (answer.ok) return 'ok';
  if (answer.errorCode === 429) return 'throttled';
  if (answer.blocked) return 'blocked';
  if (answer.errorCode === undefined) return 'network';
  return answer.errorCode >= 500 ? 'server_error' : 'client_error';
}

export function recordTelegramCall(method: string, outcome: TelegramOutcome): void {
  telegramCalls.inc({ method, outcome });
}

/** A 429's retry_after, in seconds. */
export function recordTelegramThrottle(retryAfterSeconds: number): void {
  telegramRetryAfter.observe(retryAfterSeconds);
}
