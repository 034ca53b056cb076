/**
 * Checks a rendered outbound request before any attempt. A request that fails here would fail the
 * same way on every attempt, so the delivery fails for good (`invalid_request`).
 *
 * This is not the SSRF guard: whether the host may be reached is decided at connect time by
 * `target-guard.ts`, on the resolved addresses.
 */

/** Largest request body sent (bytes). */
export const MAX_BODY_BYTES = 256 * 1024;
/** Longest URL sent (characters, after normalization). */
const MAX_URL_LENGTH = 8192;
const MAX_HEADERS = 100;

export const DELIVERY_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;
export type DeliveryMethod = (typeof DELIVERY_METHODS)[number];

export type InvalidRequestCode =
  | 'invalid_method'
  | 'invalid_url'
  | 'url_too_long'
  | 'unsupported_protocol'
  | 'credentials_in_url'
  | 'missing_host'
  | 'invalid_header'
  | 'forbidden_header'
  | 'too_many_headers'
  | 'body_not_allowed'
  | 'body_too_large';

export type ValidationResult =
  { ok: true; url: URL; method: DeliveryMethod } | { ok: false; code: InvalidRequestCode; reason: string };

export interface DeliveryRequest {
  method: string;
  url: string | URL;
  headers?: Record<string, string> | null;
  body?: string | Uint8Array | null;
}

// RFC 9110 token.
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
// Field values: no control characters other than horizontal tab (so no CR, LF or NUL).
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const BAD_HEADER_VALUE = /[\u0000-\u0008\u000a-\u001f\u007f]/;
/**
 * Set by the HTTP client from the URL and the body, or hop-by-hop: a script may not set them
 * (a `Host` would address another virtual host than the URL shows; framing headers could
 * desynchronize the connection).
 */
const FORBIDDEN_HEADERS = new Set([
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'proxy-connection',
  'upgrade',
  'te',
  'trailer',
  'expect',
]);

// An encoded dot ("%2E") stands in for this mark while the URL is parsed, so the parser does not
// read a "%2E%2E" segment as ".." and drop it with the segment before it. The mark is a private-use
// character, which the parser percent-encodes as below.
const DOT_MARK = '\uE000';
const ENCODED_DOT_MARK = /%EE%80%80/g;
const ENCODED_DOT = /%2e/gi;

/** The path (and query) sent for a URL, when it differs from what the URL parser made of it. */
const sentPaths = new WeakMap<URL, string>();

/**
 * The URL's path as written, with its encoded dots kept: a Send Webhook URL encodes a value made
 * only of dots (`..`) as `%2E%2E`, and the receiver must get that literal segment, not the parent
 * path the URL Standard turns it into. Null when nothing differs or the text already holds the mark.
 */
function pathKeepingEncodedDots(raw: string, url: URL): string | null {
  if (!/%2e/i.test(raw) || raw.includes(DOT_MARK) || /%EE%80%80/i.test(raw)) return null;
  let marked: URL;
  try {
    marked = new URL(raw.replace(ENCODED_DOT, DOT_MARK));
  } catch {
    return null;
  }
  const path = `${marked.pathname}${marked.search}`.replace(ENCODED_DOT_MARK, '%2E');
  return path === `${url.pathname}${url.search}` ? null : path;
}

/** The request target (path and query) to send for a URL that passed `validateDeliveryRequest`. */
export function requestPath(url: URL): string {
  return sentPaths.get(url) ?? (url.search ? `${url.pathname}${url.search}` : url.pathname);
}

function fail(code: InvalidRequestCode, reason: string): ValidationResult {
  return { ok: false, code, reason };
}

/** Validates method, URL, headers and body of an outbound webhook request. */
export function validateDeliveryRequest(request: DeliveryRequest): ValidationResult {
  const method = typeof request.method === 'string' ? request.method.toUpperCase() : '';
  if (!(DELIVERY_METHODS as readonly string[]).includes(method)) {
    return fail('invalid_method', `method must be one of ${DELIVERY_METHODS.join(', ')}`);
  }

  let url: URL;
  try {
    url = new URL(String(request.url));
  } catch {
    return fail('invalid_url', 'the URL is not a valid absolute URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return fail('unsupported_protocol', `only http and https URLs are delivered, not ${url.protocol.slice(0, 20)}`);
  }
  if (url.username !== '' || url.password !== '') {
    return fail(
      'credentials_in_url',
      'the URL must not carry a user name or password; send an Authorization header instead',
    );
  }
  if (url.hostname === '') return fail('missing_host', 'the URL has no host');
  if (url.href.length > MAX_URL_LENGTH) {
    return fail('url_too_long', `the URL is longer than ${MAX_URL_LENGTH} characters`);
  }
  const sentPath = pathKeepingEncodedDots(String(request.url), url);
  if (sentPath !== null) sentPaths.set(url, sentPath);

  const headers = request.headers ?? {};
  const names = Object.keys(headers);
  if (names.length > MAX_HEADERS) return fail('too_many_headers', `at most ${MAX_HEADERS} headers`);
  for (const name of names) {
    const value = headers[name];
    if (!HEADER_NAME.test(name)) return fail('invalid_header', `"${name.slice(0, 64)}" is not a valid header name`);
    if (FORBIDDEN_HEADERS.has(name.toLowerCase())) {
      return fail('forbidden_header', `the ${name} header is set by the HTTP client and may not be given`);
    }
    if (typeof value !== 'string' || BAD_HEADER_VALUE.test(value)) {
      return fail('invalid_header', `the value of ${name} must be text without line breaks or control characters`);
    }
  }

  const body = request.body ?? null;
  if (body !== null) {
    const bytes = typeof body === 'string' ? Buffer.byteLength(body, 'utf8') : body.byteLength;
    if (bytes > 0 && (method === 'GET' || method === 'HEAD')) {
      return fail('body_not_allowed', `a ${method} request takes no body`);
    }
    if (bytes > MAX_BODY_BYTES) {
      return fail('body_too_large', `the body is ${bytes} bytes; at most ${MAX_BODY_BYTES} are sent`);
    }
  }

  return { ok: true, url, method: method as DeliveryMethod };
}
