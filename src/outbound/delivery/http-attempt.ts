/**
 * One HTTP attempt of an outbound webhook. Never throws: every failure is described in the result,
 * ready to be logged as an attempt and classified by `classifyOutcome`.
 *
 * - The connection goes through the given dispatcher (the guarded agent in production).
 * - Redirects are never followed: a 3xx is reported as `redirect`, with its status.
 * - A total deadline bounds the whole attempt (lookup, connect, headers, body), besides undici's
 *   connect / headers / body timeouts.
 * - At most `maxReadBytes` of the response body are read, then the stream is destroyed; the first
 *   `excerptBytes` are kept as text for the attempt log.
 */
import { setMaxListeners } from 'node:events';
import { performance } from 'node:perf_hooks';
import { request, type Dispatcher } from 'undici';
import { validateDeliveryRequest } from './request-validation.js';

export type AttemptErrorKind =
  | 'timeout'
  | 'network'
  | 'refused_target'
  | 'redirect'
  | 'too_large'
  | 'invalid_request'
  | 'aborted';

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

/** Makes one attempt; resolves with what happened, never rejects. */
export async function attemptDelivery(input: AttemptInput): Promise<AttemptResult> {
  const started = performance.now();
  try {
    return await attempt(input, started);
  } catch (failure) {
    // Only a programming error (bad options, say) gets here; it is still a described failure.
    return {
      excerpt: null,
      retryAfter: null,
      bytesRead: 0,
      truncated: false,
      durationMs: performance.now() - started,
      error: withCode(failure, codeOf(failure)),
      errorKind: 'network',
    };
  }
}

async function attempt(input: AttemptInput, started: number): Promise<AttemptResult> {
  const totalTimeoutMs = input.totalTimeoutMs ?? 10_000;
  const maxReadBytes = input.maxReadBytes ?? 64 * 1024;
  const excerptBytes = Math.min(input.excerptBytes ?? 2 * 1024, maxReadBytes);
  const base = { excerpt: null, retryAfter: null, bytesRead: 0, truncated: false };
  const elapsed = () => performance.now() - started;

  const checked =
    input.prechecked && input.url instanceof URL
      ? ({ ok: true, url: input.url, method: input.method } as const)
      : validateDeliveryRequest({ method: input.method, url: input.url, headers: input.headers, body: input.body });
  if (!checked.ok) {
    return {
      ...base,
      error: checked.reason,
      errorKind: checked.code === 'body_too_large' ? 'too_large' : 'invalid_request',
      durationMs: elapsed(),
    };
  }

  const deadline = sharedDeadline(totalTimeoutMs);
  const signal = input.signal ? AbortSignal.any([deadline, input.signal]) : deadline;
  const timeoutsMs = input.headersTimeoutMs ?? totalTimeoutMs;

  let response: Dispatcher.ResponseData;
  try {
    response = await request(checked.url, {
      dispatcher: input.agent,
      method: checked.method,
      headers: input.headers ?? {},
      body: input.body ?? null,
      signal,
      headersTimeout: timeoutsMs,
      bodyTimeout: timeoutsMs,
    });
  } catch (failure) {
    return { ...base, ...describeFailure(failure, deadline, input.signal, totalTimeoutMs), durationMs: elapsed() };
  }

  const status = response.statusCode;
  const retryAfter = firstHeader(response.headers['retry-after']);
  const read = await readLimited(response.body, maxReadBytes, excerptBytes);
  const result: AttemptResult = {
    status,
    durationMs: elapsed(),
    excerpt: read.excerpt,
    retryAfter,
    bytesRead: read.bytesRead,
    truncated: read.truncated,
  };
  if (read.error) {
    result.bodyError = describeFailure(read.error, deadline, input.signal, totalTimeoutMs).error;
  }
  if (status >= 300 && status <= 399) {
    const location = firstHeader(response.headers.location);
    result.errorKind = 'redirect';
    result.error = `HTTP ${status} redirect${location ? ` to ${location.slice(0, 512)}` : ''}; redirects are not followed, update the webhook URL`;
  }
  return result;
}

function firstHeader(value: string | string[] | undefined): string | null {
  if (Array.isArray(value)) return value[0] ?? null;
  return value ?? null;
}

interface ReadResult {
  bytesRead: number;
  truncated: boolean;
  excerpt: string | null;
  error?: unknown;
}

function readLimited(body: Dispatcher.ResponseData['body'], maxReadBytes: number, excerptBytes: number): Promise<ReadResult> {
  return new Promise<ReadResult>((resolve) => {
    const kept: Buffer[] = [];
    let keptBytes = 0;
    let bytesRead = 0;
    let truncated = false;
    let done = false;
    const finish = (error?: unknown) => {
      if (done) return;
      done = true;
      body.off('data', onData);
      body.off('end', onEnd);
      // The error listener stays: destroying the body emits one, which `done` ignores.
      // Destroying a body left unread makes undici close the connection.
      if (!body.destroyed) body.destroy();
      const excerpt = decodeExcerpt(kept.length === 1 ? kept[0]! : Buffer.concat(kept));
      resolve({ bytesRead, truncated, excerpt, ...(error === undefined ? {} : { error }) });
    };
    const onData = (chunk: Buffer | Uint8Array) => {
      const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
      const room = maxReadBytes - bytesRead;
      const take = buffer.length > room ? buffer.subarray(0, room) : buffer;
      bytesRead += take.length;
      if (keptBytes < excerptBytes) {
        const part = take.subarray(0, excerptBytes - keptBytes);
        kept.push(part);
        keptBytes += part.length;
      }
      if (buffer.length > room) {
        truncated = true;
        finish();
      }
    };
    const onEnd = () => finish();
    body.on('data', onData);
    body.once('end', onEnd);
    body.once('error', finish);
  });
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

const DEADLINE_BUCKET_MS = 100;
const deadlines = new Map<number, { bucket: number; signal: AbortSignal }>();

/**
 * The total deadline of an attempt started now. Attempts started within the same 100 ms share one
 * timer signal (so each gets between the deadline and 100 ms more), instead of a timer each.
 */
function sharedDeadline(totalTimeoutMs: number): AbortSignal {
  if (!Number.isFinite(totalTimeoutMs) || totalTimeoutMs <= 0) throw new RangeError('totalTimeoutMs must be a positive number');
  const bucket = Math.floor(performance.now() / DEADLINE_BUCKET_MS);
  const current = deadlines.get(totalTimeoutMs);
  if (current && current.bucket === bucket) return current.signal;
  const signal = AbortSignal.timeout(totalTimeoutMs + DEADLINE_BUCKET_MS);
  // Every attempt of the bucket listens to it: no leak warning for that.
  setMaxListeners(0, signal);
  if (deadlines.size > 100) deadlines.clear();
  deadlines.set(totalTimeoutMs, { bucket, signal });
  return signal;
}

function describeFailure(
  failure: unknown,
  deadline: AbortSignal,
  callerSignal: AbortSignal | undefined,
  totalTimeoutMs: number,
): { error: string; errorKind: AttemptErrorKind } {
  if (findCode(failure, 'ERR_OUTBOUND_TARGET_REFUSED')) {
    return { error: messageOf(findCode(failure, 'ERR_OUTBOUND_TARGET_REFUSED')), errorKind: 'refused_target' };
  }
  if (deadline.aborted) {
    return { error: `no complete answer within the ${totalTimeoutMs} ms deadline`, errorKind: 'timeout' };
  }
  if (callerSignal?.aborted) return { error: 'the attempt was aborted', errorKind: 'aborted' };
  const code = codeOf(failure);
  if (code && TIMEOUT_CODES.has(code)) return { error: withCode(failure, code), errorKind: 'timeout' };
  if (code === 'UND_ERR_INVALID_ARG' || code === 'UND_ERR_NOT_SUPPORTED') {
    return { error: withCode(failure, code), errorKind: 'invalid_request' };
  }
  return { error: withCode(failure, code), errorKind: 'network' };
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
