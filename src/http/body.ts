import type { Context } from 'koa';
import { DomainError } from '../domain/errors.js';

export const MAX_REQUEST_BYTES = 64 * 1024;

const utf8 = new TextDecoder('utf-8', { fatal: true });

function decodeComponent(text: string, what: string): string {
  if (!text.includes('%') && !text.includes('+')) return text;
  try {
    return decodeURIComponent(text.includes('+') ? text.replace(/\+/g, ' ') : text);
  } catch {
    const name = what.length > 100 ? `${what.slice(0, 100)}…` : what;
    throw new DomainError('invalid', 'invalid_encoding', `${name} is not valid percent-encoded UTF-8`, { param: name });
  }
}

/** Splits `a=1&b=2` into decoded pairs; refuses malformed percent-encoding and non-UTF-8. */
export function parseUrlEncoded(text: string): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  if (text === '') return pairs;
  for (const part of text.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const rawName = eq === -1 ? part : part.slice(0, eq);
    const name = decodeComponent(rawName, rawName);
    const value = eq === -1 ? '' : decodeComponent(part.slice(eq + 1), name);
    pairs.push([name, value]);
  }
  return pairs;
}

/** Reads the request body, at most `limit` bytes (413 past it). */
async function readRawBody(ctx: Context, limit = MAX_REQUEST_BYTES): Promise<Buffer> {
  const declared = Number(ctx.get('content-length') || 0);
  if (declared > limit)
    throw new DomainError('too_large', 'request_too_large', `the request body is larger than ${limit} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit)
      throw new DomainError('too_large', 'request_too_large', `the request body is larger than ${limit} bytes`);
    chunks.push(chunk);
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}

function decodeUtf8(raw: Buffer): string {
  try {
    return utf8.decode(raw);
  } catch {
    throw new DomainError('invalid', 'invalid_encoding', 'the request body is not valid UTF-8');
  }
}

function parseJsonObject(raw: Buffer): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(decodeUtf8(raw));
  } catch (error) {
    if (error instanceof DomainError) throw error;
    throw new DomainError('invalid', 'invalid_json', `the body is not valid JSON: ${(error as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new DomainError('invalid', 'invalid_json', 'the body must be a JSON object');
  }
  return value as Record<string, unknown>;
}

export type ParsedBody = Array<[string, string]> | Record<string, unknown> | null;

/** Reads a form or JSON body; an empty body is null; any other media type is refused (415). */
export async function readParamsBody(ctx: Context): Promise<ParsedBody> {
  const raw = await readRawBody(ctx);
  if (raw.length === 0) return null;
  const type = (ctx.get('content-type').split(';')[0] ?? '').trim().toLowerCase();
  if (type === 'application/json' || type.endsWith('+json')) return parseJsonObject(raw);
  if (type === 'application/x-www-form-urlencoded' || type === '') return parseUrlEncoded(decodeUtf8(raw));
  throw new DomainError(
    'unsupported_media_type',
    'unsupported_media_type',
    'send application/json or application/x-www-form-urlencoded',
  );
}

/** Reads a JSON object body (management API); with `optional`, no body at all reads as `{}`. */
export async function readJsonBody(
  ctx: Context,
  options: { optional?: boolean } = {},
): Promise<Record<string, unknown>> {
  const raw = await readRawBody(ctx, 1024 * 1024);
  if (raw.length === 0 && options.optional) return {};
  if (raw.length === 0) throw new DomainError('invalid', 'invalid_json', 'a JSON object body is required');
  return parseJsonObject(raw);
}
