/**
 * What went wrong, in the domain's terms. The HTTP layer chooses the status code from `kind`
 * (src/http/errors.ts); nothing below it knows about HTTP.
 */
export type DomainErrorKind =
  /** Malformed input: a value or parameter that cannot be read. */
  | 'invalid'
  /** Well-formed input the current state refuses: an unknown step, a value of the wrong type. */
  | 'unprocessable'
  | 'not_found'
  | 'conflict'
  | 'too_large'
  | 'unsupported_media_type'
  | 'method_not_allowed'
  | 'rate_limited'
  | 'unauthorized'
  /** A dependency (the queue, the database, Telegram) cannot take the work now; the caller should retry. */
  | 'unavailable';

export interface DomainErrorDetail {
  /** The parameter at fault, as the caller named it. */
  param?: string;
  /** Further structured detail, e.g. every problem of a refused script. */
  details?: Record<string, unknown>;
  cause?: unknown;
}

/** The one error type of flowpost's refusals; `code` is the machine code (snake_case) the API answers with. */
export class DomainError extends Error {
  readonly param: string | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(
    readonly kind: DomainErrorKind,
    readonly code: string,
    message: string,
    detail: DomainErrorDetail = {},
  ) {
    super(message, detail.cause === undefined ? undefined : { cause: detail.cause });
    this.name = 'DomainError';
    this.param = detail.param;
    this.details = detail.details;
  }
}

/** A dialog route's chat id names no dialog of the bot. */
export function unknownDialogError(): DomainError {
  return new DomainError('not_found', 'unknown_dialog', 'no dialog with this chatId', { param: 'chatId' });
}
