import type { Context } from 'koa';
import { DomainError } from '../domain/errors.js';
import { parseUrlEncoded } from '../http/body.js';

/** A script document may be up to 1 MiB, as through the management API; a form adds its encoding. */
const MAX_FORM_BYTES = 3 * 1024 * 1024;

/** A submitted form: each field's first value. */
export type FormFields = ReadonlyMap<string, string>;

/** Reads an `application/x-www-form-urlencoded` body (the only kind the console's forms send). */
export async function readForm(ctx: Context): Promise<FormFields> {
  const type = (ctx.get('content-type').split(';')[0] ?? '').trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') {
    throw new DomainError(
      'unsupported_media_type',
      'unsupported_media_type',
      'console forms send application/x-www-form-urlencoded',
    );
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_FORM_BYTES)
      throw new DomainError('too_large', 'request_too_large', `the form is larger than ${MAX_FORM_BYTES} bytes`);
    chunks.push(chunk);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks));
  } catch {
    throw new DomainError('invalid', 'invalid_encoding', 'the form is not valid UTF-8');
  }
  const fields = new Map<string, string>();
  for (const [name, value] of parseUrlEncoded(text)) if (!fields.has(name)) fields.set(name, value);
  return fields;
}
