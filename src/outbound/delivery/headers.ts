import { headerSafeText } from '../../templates/index.js';
import {
  WEBHOOK_ID_HEADER,
  WEBHOOK_SIGNATURE_HEADER,
  WEBHOOK_TIMESTAMP_HEADER,
  buildSignatureHeaders,
} from './signature.js';

/** What of a delivery its headers are made from. */
export interface HeaderSource {
  messageId: string;
  headers: Record<string, string>;
  body: string | null;
}

const JSON_BODY = /^\s*[[{]/;

// Ours replace the step's own of the same name, whatever its case.
const OUR_HEADERS = new Set(['user-agent', WEBHOOK_ID_HEADER, WEBHOOK_TIMESTAMP_HEADER, WEBHOOK_SIGNATURE_HEADER]);

/**
 * The headers of one attempt: the step's, then Standard Webhooks' and ours. Without a signing
 * secret the attempt still carries its id and timestamp, unsigned. A step's value recorded with a
 * character the HTTP client refuses (before values were encoded when rendered) is sent with that
 * character percent-encoded, not failed.
 */
export function deliveryHeaders(
  delivery: HeaderSource,
  signingSecret: string | null,
  userAgent: string,
  now: Date,
): Record<string, string> {
  const timestamp = Math.floor(now.getTime() / 1000);
  const headers: Record<string, string> = {};
  let hasContentType = false;
  for (const name in delivery.headers) {
    if (!Object.hasOwn(delivery.headers, name)) continue;
    const lower = name.toLowerCase();
    if (OUR_HEADERS.has(lower)) continue;
    if (lower === 'content-type') hasContentType = true;
    headers[name] = headerSafeText(delivery.headers[name]!);
  }
  if (delivery.body !== null && !hasContentType) {
    headers['content-type'] = JSON_BODY.test(delivery.body) ? 'application/json' : 'text/plain; charset=utf-8';
  }
  headers['user-agent'] = userAgent;
  if (signingSecret) {
    Object.assign(
      headers,
      buildSignatureHeaders({ secret: signingSecret, msgId: delivery.messageId, timestamp, body: delivery.body ?? '' }),
    );
  } else {
    headers[WEBHOOK_ID_HEADER] = delivery.messageId;
    headers[WEBHOOK_TIMESTAMP_HEADER] = String(timestamp);
  }
  return headers;
}
