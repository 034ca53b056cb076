/**
 * When to retry an outbound webhook and how long to wait (pure; no I/O, no clock, no randomness
 * of its own: `now` and `random` are passed in).
 *
 * Rules (DESIGN.md, after Svix and the Standard Webhooks spec):
 * - only 2xx is success;
 * - 408, 425, 429, 5xx, timeouts and network errors retry;
 * - 3xx is a failure (redirects are never followed) that retries: the receiver may fix its URL;
 * - every other 4xx (400, 401, 404, 410 …) fails for good;
 * - a refused target (private/loopback/… address) or an invalid request fails for good: sending it
 *   again cannot succeed.
 */

/** Seconds to wait before each attempt: attempt n+1 waits `schedule[n]`; attempts = length. */
export const DEFAULT_RETRY_SCHEDULE_SECONDS: readonly number[] = Object.freeze([
  0, 5, 300, 1800, 7200, 18_000, 36_000, 36_000,
]);

/** ±20 % around the scheduled delay. */
const RETRY_JITTER_RATIO = 0.2;
/** A `Retry-After` is honoured, clamped to [1 s, 1 h]. */
const RETRY_AFTER_MIN_MS = 1_000;
const RETRY_AFTER_MAX_MS = 3_600_000;

export type AttemptOutcome = 'success' | 'retry' | 'final';

/** Error kinds that can never succeed by sending the same request again. */
const FINAL_ERRORS = new Set(['refused_target', 'invalid_request', 'too_large']);

/**
 * Classifies one attempt.
 *
 * - `refused_target`, `invalid_request` and `too_large` (request body over the limit) are final,
 *   whatever else is set.
 * - Otherwise a received status decides (a body that failed to arrive after a 2xx is still a
 *   success: the receiver has accepted the message).
 * - Otherwise any error (`timeout`, `network`, `redirect`, `aborted`, unknown strings) retries.
 * - Neither status nor error: an unknown failure, retried.
 */
export function classifyOutcome(outcome: { status?: number | null; error?: string | null }): AttemptOutcome {
  const { status, error } = outcome;
  if (error && FINAL_ERRORS.has(error)) return 'final';
  if (typeof status === 'number' && Number.isFinite(status)) return classifyStatus(status);
  return 'retry';
}

function classifyStatus(status: number): AttemptOutcome {
  if (status >= 200 && status <= 299) return 'success';
  if (status >= 400 && status <= 499) {
    return status === 408 || status === 425 || status === 429 ? 'retry' : 'final';
  }
  // 3xx (not followed), 5xx, and anything non-standard (1xx, ≥ 600): retry.
  return 'retry';
}

export interface NextAttemptInput {
  /** Attempts made so far (≥ 1). */
  attempt: number;
  /** Seconds before each attempt; defaults to DEFAULT_RETRY_SCHEDULE_SECONDS. */
  schedule?: readonly number[];
  /** The `Retry-After` of the last response, if any. */
  retryAfterHeader?: string | null;
  /** A uniform number in [0, 1), e.g. Math.random. */
  random: () => number;
  now: Date;
}

/**
 * Milliseconds until the next attempt, or null when the schedule is exhausted
 * (`attempt >= schedule.length`).
 *
 * - Without a usable `Retry-After`: `schedule[attempt]` seconds with ±20 % jitter.
 * - With one (delta-seconds or HTTP-date): exactly what it asks, clamped to [1 s, 1 h], instead
 *   of the schedule, longer or shorter. It never adds attempts: the count is the schedule's.
 */
export function nextAttemptDelayMs(input: NextAttemptInput): number | null {
  const schedule = input.schedule ?? DEFAULT_RETRY_SCHEDULE_SECONDS;
  if (!Number.isInteger(input.attempt) || input.attempt < 1) {
    throw new RangeError(`attempt must be a whole number ≥ 1, got ${input.attempt}`);
  }
  const seconds = schedule[input.attempt];
  if (seconds === undefined) return null;

  if (input.retryAfterHeader) {
    const asked = parseRetryAfter(input.retryAfterHeader, input.now);
    if (asked !== null) return Math.min(RETRY_AFTER_MAX_MS, Math.max(RETRY_AFTER_MIN_MS, asked));
  }
  return jittered(seconds * 1000, input.random);
}

/** `baseMs` scaled by a factor drawn uniformly from [0.8, 1.2). */
function jittered(baseMs: number, random: () => number): number {
  const r = Math.min(Math.max(random(), 0), 1);
  const factor = 1 + (r * 2 - 1) * RETRY_JITTER_RATIO;
  return Math.max(0, Math.round(baseMs * factor));
}

// RFC 9110 §5.6.7 HTTP-date: IMF-fixdate, and the obsolete RFC 850 and asctime forms.
const IMF_FIXDATE =
  /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$/;
const RFC850_DATE =
  /^(Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), \d{2}-(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)-\d{2} \d{2}:\d{2}:\d{2} GMT$/;
const ASCTIME_DATE =
  /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ \d]\d \d{2}:\d{2}:\d{2} \d{4}$/;

/**
 * Parses a `Retry-After` value (RFC 9110 §10.2.3) into milliseconds from `now`:
 * delta-seconds (`120`) or an HTTP-date (a date in the past gives 0). Null when unparsable.
 */
export function parseRetryAfter(value: string | null | undefined, now: Date): number | null {
  if (value == null) return null;
  const text = value.trim();
  if (/^\d+$/.test(text)) {
    const seconds = Number(text);
    return Number.isSafeInteger(seconds) ? seconds * 1000 : null;
  }
  let at = Number.NaN;
  if (IMF_FIXDATE.test(text) || RFC850_DATE.test(text)) {
    at = Date.parse(text);
  } else if (ASCTIME_DATE.test(text)) {
    at = Date.parse(`${text} GMT`);
  }
  if (!Number.isFinite(at)) return null;
  return Math.max(0, at - now.getTime());
}
