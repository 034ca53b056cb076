/**
 * Standard Webhooks symmetric signatures (https://www.standardwebhooks.com, spec 1.0.0).
 *
 * - Secret: 24–64 random bytes, shown as `whsec_` + base64.
 * - Signed content: `{webhook-id}.{webhook-timestamp}.{body}` (the exact bytes sent).
 * - Signature: `v1,` + base64(HMAC-SHA256(key = base64-decoded secret, content)).
 * - Headers: `webhook-id`, `webhook-timestamp` (unix seconds), `webhook-signature` (one or more
 *   space-separated signatures, so a secret can be rotated without downtime).
 *
 * A receiver verifies like `verifySignature` below: recompute `v1` over the raw body, compare in
 * constant time against each `v1,` entry, refuse timestamps more than 5 minutes away from now,
 * and dedupe on `webhook-id`.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

const SIGNING_SECRET_PREFIX = 'whsec_';
const MIN_SECRET_BYTES = 24;
const MAX_SECRET_BYTES = 64;
const DEFAULT_TOLERANCE_SECONDS = 300;

export const WEBHOOK_ID_HEADER = 'webhook-id';
export const WEBHOOK_TIMESTAMP_HEADER = 'webhook-timestamp';
export const WEBHOOK_SIGNATURE_HEADER = 'webhook-signature';

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

class InvalidSigningSecretError extends Error {
  constructor(reason: string) {
    super(`invalid webhook signing secret: ${reason}`);
    this.name = 'InvalidSigningSecretError';
  }
}

/** A new secret: `whsec_` + 24 random bytes in base64. */
export function generateSigningSecret(): string {
  return SIGNING_SECRET_PREFIX + randomBytes(MIN_SECRET_BYTES).toString('base64');
}

/**
 * The HMAC key of a `whsec_<base64>` secret (the prefix is optional, as in the reference
 * libraries). Throws InvalidSigningSecretError unless it is strict base64 of 24–64 bytes.
 */
function decodeSigningSecret(secret: string): Buffer {
  if (typeof secret !== 'string') throw new InvalidSigningSecretError('not a string');
  const encoded = secret.startsWith(SIGNING_SECRET_PREFIX) ? secret.slice(SIGNING_SECRET_PREFIX.length) : secret;
  if (encoded === '' || !BASE64.test(encoded)) throw new InvalidSigningSecretError('not base64');
  const key = Buffer.from(encoded, 'base64');
  if (key.length < MIN_SECRET_BYTES || key.length > MAX_SECRET_BYTES) {
    throw new InvalidSigningSecretError(`must be ${MIN_SECRET_BYTES} to ${MAX_SECRET_BYTES} bytes, got ${key.length}`);
  }
  return key;
}

export interface SignInput {
  /** `whsec_<base64>`. */
  secret: string;
  /** The message id, the same on every attempt; must not contain `.` or whitespace. */
  msgId: string;
  /** Unix seconds of this attempt. */
  timestamp: number;
  /** The exact body sent (a string is signed as UTF-8). */
  body: string | Uint8Array;
}

/** `v1,<base64 HMAC-SHA256 of "msgId.timestamp.body">`. */
export function signPayload(input: SignInput): string {
  const key = decodeSigningSecret(input.secret);
  assertSignable(input.msgId, input.timestamp);
  return `v1,${hmac(key, input.msgId, String(input.timestamp), input.body)}`;
}

/**
 * The three Standard Webhooks headers for one attempt. Several secrets (the current one first,
 * then those being rotated out) give several space-separated signatures.
 */
export function buildSignatureHeaders(input: Omit<SignInput, 'secret'> & { secret: string | readonly string[] }): {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
} {
  const secrets = typeof input.secret === 'string' ? [input.secret] : input.secret;
  if (secrets.length === 0) throw new InvalidSigningSecretError('no secret given');
  const signatures = secrets.map((secret) => signPayload({ ...input, secret }));
  return {
    [WEBHOOK_ID_HEADER]: input.msgId,
    [WEBHOOK_TIMESTAMP_HEADER]: String(input.timestamp),
    [WEBHOOK_SIGNATURE_HEADER]: signatures.join(' '),
  };
}

export type VerifyFailure =
  'missing_headers' | 'invalid_timestamp' | 'timestamp_too_old' | 'timestamp_too_new' | 'no_matching_signature';

export type VerifyResult = { ok: true; msgId: string; timestamp: number } | { ok: false; reason: VerifyFailure };

type HeaderBag = Headers | Record<string, string | readonly string[] | undefined>;

export interface VerifyInput {
  secret: string;
  /** The request's headers (any case), e.g. Node's `req.headers` or a Fetch `Headers`. */
  headers: HeaderBag;
  /** The raw body exactly as received (do not re-serialize parsed JSON). */
  body: string | Uint8Array;
  toleranceSeconds?: number;
  now?: Date;
}

/**
 * Verifies a Standard Webhooks request the way a receiver should. Throws only on an invalid
 * secret (a programming error); every other problem is a `{ ok: false, reason }`.
 */
export function verifySignature(input: VerifyInput): VerifyResult {
  const key = decodeSigningSecret(input.secret);
  const msgId = headerValue(input.headers, WEBHOOK_ID_HEADER);
  const timestampText = headerValue(input.headers, WEBHOOK_TIMESTAMP_HEADER);
  const signatureHeader = headerValue(input.headers, WEBHOOK_SIGNATURE_HEADER);
  if (!msgId || !timestampText || !signatureHeader) return { ok: false, reason: 'missing_headers' };

  if (!/^\d{1,15}$/.test(timestampText.trim())) return { ok: false, reason: 'invalid_timestamp' };
  const timestamp = Number(timestampText.trim());
  const tolerance = input.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  const nowSeconds = Math.floor((input.now ?? new Date()).getTime() / 1000);
  if (nowSeconds - timestamp > tolerance) return { ok: false, reason: 'timestamp_too_old' };
  if (timestamp - nowSeconds > tolerance) return { ok: false, reason: 'timestamp_too_new' };

  const expected = Buffer.from(hmac(key, msgId, String(timestamp), input.body), 'utf8');
  let matched = false;
  for (const entry of signatureHeader.split(' ')) {
    const comma = entry.indexOf(',');
    if (comma < 0 || entry.slice(0, comma) !== 'v1') continue;
    const given = Buffer.from(entry.slice(comma + 1), 'utf8');
    // timingSafeEqual needs equal lengths; a length mismatch reveals nothing secret.
    if (given.length === expected.length && timingSafeEqual(given, expected)) matched = true;
  }
  return matched ? { ok: true, msgId, timestamp } : { ok: false, reason: 'no_matching_signature' };
}

function hmac(key: Buffer, msgId: string, timestamp: string, body: string | Uint8Array): string {
  return createHmac('sha256', key)
    .update(`${msgId}.${timestamp}.`, 'utf8')
    .update(typeof body === 'string' ? Buffer.from(body, 'utf8') : body)
    .digest('base64');
}

function assertSignable(msgId: string, timestamp: number): void {
  if (typeof msgId !== 'string' || msgId === '' || /[.\s]/.test(msgId)) {
    throw new TypeError('msgId must be a non-empty string without "." or whitespace');
  }
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) {
    throw new TypeError('timestamp must be whole unix seconds');
  }
}

function headerValue(headers: HeaderBag, name: string): string | undefined {
  if (typeof (headers as Headers).get === 'function' && typeof (headers as Headers).has === 'function') {
    return (headers as Headers).get(name) ?? undefined;
  }
  const bag = headers as Record<string, string | readonly string[] | undefined>;
  for (const key of Object.keys(bag)) {
    if (key.toLowerCase() !== name) continue;
    const value = bag[key];
    if (typeof value === 'string') return value;
    // Repeated headers: signatures may be split over several lines; id and timestamp may not.
    if (Array.isArray(value)) {
      // Array.isArray forgets the element type of a readonly array.
      const lines = value as readonly string[];
      if (name === WEBHOOK_SIGNATURE_HEADER) return lines.join(' ');
      return lines.length === 1 ? lines[0] : undefined;
    }
  }
  return undefined;
}
