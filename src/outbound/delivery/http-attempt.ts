/**
 * One HTTP attempt of an outbound webhook. Never throws: every failure is described in the result,
 * ready to be logged as an attempt and classified by `classifyOutcome`.
 *
 * - The connection goes through the given dispatcher (the guarded agent in production).
 * - Redirects are never followed: a 3xx is reported as `redirect`, with its status.
 * - A total deadline bounds the whole attempt (lookup, connect, headers, body), besides undici's
 *   connect / headers / body timeouts.
 * - At most `maxReadBytes` of the response body are read, then the connection is dropped; the
 *   first `excerptBytes` are kept as text for the attempt log.
 */
import { performance } from 'node:perf_hooks';
import type { Dispatcher } from 'undici';
import { DeadlineBuckets, type DeadlineBucket, type Expiring } from './deadline-buckets.js';
import { requestPath, validateDeliveryRequest } from './request-validation.js';

export type AttemptErrorKind =
  'timeout' | 'network' | 'refused_target' | 'redirect' | 'too_large' | 'invalid_request' | 'aborted';

export interface AttemptInput {
  /** The guarded agent (createGuardedAgent); any undici dispatcher works. */
  agent: Dispatcher;
  method: string;
  url: string | URL;
  headers?: Record<string, string> | null;
  body?: string | Uint8Array | null;
  /** Deadline for the whole attempt. Default 10 s. */
  totalTimeoutMs?: number;
  /** undici headersTimeout (and bodyTimeout: the longest silence while reading). Default: the total. */
  headersTimeoutMs?: number;
  /** Response bytes read at most. Default 64 KiB. */
  maxReadBytes?: number;
  /** Response bytes kept as text. Default 2 KiB. */
  excerptBytes?: number;
  /** Aborts the attempt (a worker shutting down, say); reported as `aborted`. */
  signal?: AbortSignal;
  /** The request already passed `validateDeliveryRequest` (and `url` is the URL it returned). */
  prechecked?: boolean;
}

export interface AttemptResult {
  /** The response status, when a response arrived. */
  status?: number;
  /** What went wrong, for people. */
  error?: string;
  errorKind?: AttemptErrorKind;
  durationMs: number;
  /** The first bytes of the response body as text (UTF-8, no split character), or null. */
  excerpt: string | null;
  /** The response's Retry-After, if any. */
  retryAfter: string | null;
  /** Response body bytes read. */
  bytesRead: number;
  /** True when the body was longer than maxReadBytes and the rest was not read. */
  truncated: boolean;
  /**
   * A failure while reading the body after the status arrived. It does not change the outcome:
   * the status decides (a 2xx means the receiver took the message).
   */
  bodyError?: string;
}

const TIMEOUT_CODES = new Set([
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ELOOKUPTIMEOUT',
  'ETIMEDOUT',
]);

/** What an attempt that got no answer reports of one. */
const NO_ANSWER = { excerpt: null, retryAfter: null, bytesRead: 0, truncated: false } as const;

/** Makes one attempt; resolves with what happened, never rejects. */
export function attemptDelivery(input: AttemptInput): Promise<AttemptResult> {
  const started = performance.now();
  const totalTimeoutMs = input.totalTimeoutMs ?? 10_000;
  const maxReadBytes = input.maxReadBytes ?? 64 * 1024;
  const excerptBytes = Math.min(input.excerptBytes ?? 2 * 1024, maxReadBytes);
  const elapsed = () => performance.now() - started;
  if (!Number.isFinite(totalTimeoutMs) || totalTimeoutMs <= 0) {
    // A setting gone wrong, not the webhook's fault: described as a failure that is retried.
    return Promise.resolve({
      ...NO_ANSWER,
      error: 'totalTimeoutMs must be a positive number',
      errorKind: 'network',
      durationMs: elapsed(),
    });
  }

  const checked =
    input.prechecked && input.url instanceof URL
      ? ({ ok: true, url: input.url, method: input.method } as const)
      : validateDeliveryRequest({ method: input.method, url: input.url, headers: input.headers, body: input.body });
  if (!checked.ok) {
    return Promise.resolve({
      ...NO_ANSWER,
      error: checked.reason,
      errorKind: checked.code === 'body_too_large' ? 'too_large' : 'invalid_request',
      durationMs: elapsed(),
    });
  }

  const url = checked.url;
  return new Promise<AttemptResult>((resolve) => {
    const exchange = new Exchange(resolve, started, totalTimeoutMs, maxReadBytes, excerptBytes, input.signal);
    exchange.start(input.agent, {
      origin: url.origin,
      path: requestPath(url),
      method: checked.method,
      headers: input.headers ?? {},
      body: input.body ?? null,
      headersTimeout: input.headersTimeoutMs ?? totalTimeoutMs,
      bodyTimeout: input.headersTimeoutMs ?? totalTimeoutMs,
    });
  });
}

const deadlines = new DeadlineBuckets(100);

/**
 * One request and its answer, through undici's dispatch API: the status, the headers it needs and
 * at most `maxReadBytes` of the body arrive as callbacks, with no response stream or promise per
 * request. It settles once: at the end of the answer, on an error, at the total deadline (shared
 * per 100 ms with the attempts started alongside), or when the caller aborts.
 */
class Exchange implements Dispatcher.DispatchHandler, Expiring {
  private controller: Dispatcher.DispatchController | null = null;
  private bucket: DeadlineBucket | null = null;
  private settled = false;
  private gaveUp: 'timeout' | 'aborted' | null = null;
  private status: number | undefined;
  private retryAfter: string | null = null;
  private location: string | null = null;
  private kept: Buffer[] = [];
  private keptBytes = 0;
  private bytesRead = 0;
  private truncated = false;

  constructor(
    private readonly resolve: (result: AttemptResult) => void,
    private readonly started: number,
    private readonly totalTimeoutMs: number,
    private readonly maxReadBytes: number,
    private readonly excerptBytes: number,
    private readonly signal: AbortSignal | undefined,
  ) {}

  start(agent: Dispatcher, options: Dispatcher.DispatchOptions): void {
    if (this.signal?.aborted) {
      this.gaveUp = 'aborted';
      this.fail(new Error('aborted before it started'));
      return;
    }
    this.bucket = deadlines.watch(this, this.totalTimeoutMs);
    this.signal?.addEventListener('abort', this.onCallerAbort);
    try {
      agent.dispatch(options, this);
    } catch (failure) {
      // A dispatcher reports bad options through onResponseError; any other throw is described too.
      this.fail(failure);
    }
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    // It waited for a connection past its deadline (or its caller gave up): it is not sent.
    if (this.settled) controller.abort(new Error('the attempt already ended'));
  }

  onResponseStart(
    _controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
  ): void {
    if (statusCode < 200) return; // informational: the answer is still to come
    this.status = statusCode;
    this.retryAfter = firstHeader(headers['retry-after']);
    if (statusCode >= 300 && statusCode <= 399) this.location = firstHeader(headers.location);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.settled) return;
    const room = this.maxReadBytes - this.bytesRead;
    const take = chunk.length > room ? chunk.subarray(0, room) : chunk;
    this.bytesRead += take.length;
    if (this.keptBytes < this.excerptBytes) {
      const part =
        take.length > this.excerptBytes - this.keptBytes ? take.subarray(0, this.excerptBytes - this.keptBytes) : take;
      this.kept.push(part);
      this.keptBytes += part.length;
    }
    if (chunk.length > room) {
      this.truncated = true;
      this.answered();
      // The rest is not read: undici drops the connection.
      controller.abort(new Error('response body limit reached'));
    }
  }

  onResponseEnd(): void {
    if (this.status === undefined) this.fail(new Error('the answer ended without a final status'));
    else this.answered();
  }

  onResponseError(_controller: Dispatcher.DispatchController | undefined, error: Error): void {
    if (this.settled) return;
    if (this.status !== undefined) this.answered(error);
    else this.fail(error);
  }

  expire(): void {
    if (this.settled) return;
    this.gaveUp = 'timeout';
    this.giveUp();
  }

  private readonly onCallerAbort = (): void => {
    if (this.settled) return;
    this.gaveUp = 'aborted';
    this.giveUp();
  };

  private giveUp(): void {
    const reason = new Error(this.gaveUp === 'timeout' ? 'deadline reached' : 'aborted');
    if (this.status !== undefined) this.answered(reason);
    else this.fail(reason);
    this.controller?.abort(reason);
  }

  private end(): boolean {
    if (this.settled) return false;
    this.settled = true;
    this.bucket?.leave(this);
    this.signal?.removeEventListener('abort', this.onCallerAbort);
    return true;
  }

  /** The status arrived: it decides, whatever became of the body. */
  private answered(bodyFailure?: Error): void {
    if (!this.end()) return;
    const status = this.status!;
    const result: AttemptResult = {
      status,
      durationMs: performance.now() - this.started,
      excerpt: decodeExcerpt(this.kept.length === 1 ? this.kept[0]! : Buffer.concat(this.kept)),
      retryAfter: this.retryAfter,
      bytesRead: this.bytesRead,
      truncated: this.truncated,
    };
    if (bodyFailure) result.bodyError = this.describe(bodyFailure).error;
    if (status >= 300 && status <= 399) {
      result.errorKind = 'redirect';
      result.error = `HTTP ${status} redirect${this.location ? ` to ${this.location.slice(0, 512)}` : ''}; redirects are not followed, update the webhook URL`;
    }
    this.resolve(result);
  }

  /** No answer: the failure says why. */
  private fail(failure: unknown): void {
    if (!this.end()) return;
    this.resolve({
      ...NO_ANSWER,
      ...this.describe(failure),
      durationMs: performance.now() - this.started,
    });
  }

  private describe(failure: unknown): { error: string; errorKind: AttemptErrorKind } {
    if (findCode(failure, 'ERR_OUTBOUND_TARGET_REFUSED')) {
      return { error: messageOf(findCode(failure, 'ERR_OUTBOUND_TARGET_REFUSED')), errorKind: 'refused_target' };
    }
    if (this.gaveUp === 'timeout') {
      return { error: `no complete answer within the ${this.totalTimeoutMs} ms deadline`, errorKind: 'timeout' };
    }
    if (this.gaveUp === 'aborted') return { error: 'the attempt was aborted', errorKind: 'aborted' };
    const code = codeOf(failure);
    if (code && TIMEOUT_CODES.has(code)) return { error: withCode(failure, code), errorKind: 'timeout' };
    if (code === 'UND_ERR_INVALID_ARG' || code === 'UND_ERR_NOT_SUPPORTED') {
      return { error: withCode(failure, code), errorKind: 'invalid_request' };
    }
    return { error: withCode(failure, code), errorKind: 'network' };
  }
}

function firstHeader(value: string | string[] | undefined): string | null {
  if (Array.isArray(value)) return value[0] ?? null;
  return value ?? null;
}

const utf8 = new TextDecoder('utf-8', { fatal: false });

/** UTF-8 text of the kept bytes; a character cut by the limit is dropped, not mangled. */
function decodeExcerpt(bytes: Buffer): string {
  // Drop a last character whose bytes did not all fit.
  let end = bytes.length;
  for (let back = 1; back <= Math.min(3, bytes.length); back++) {
    const byte = bytes[bytes.length - back]!;
    if ((byte & 0xc0) === 0x80) continue; // a continuation byte: look further back
    const length = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1;
    if (length > back) end = bytes.length - back;
    break;
  }
  return utf8.decode(bytes.subarray(0, end));
}

function codeOf(failure: unknown): string | undefined {
  const code = (failure as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** The error (or one of its causes) with that code. */
function findCode(failure: unknown, code: string): unknown {
  let current: unknown = failure;
  for (let depth = 0; depth < 5 && current; depth += 1) {
    if (codeOf(current) === code) return current;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

function messageOf(failure: unknown): string {
  if (failure instanceof Error) return failure.message;
  return String(failure);
}

function withCode(failure: unknown, code: string | undefined): string {
  const message = messageOf(failure);
  const cause = failure instanceof Error && failure.cause instanceof Error ? `: ${failure.cause.message}` : '';
  const text = code && !message.includes(code) ? `${code}: ${message}${cause}` : `${message}${cause}`;
  return text.slice(0, 1000);
}
