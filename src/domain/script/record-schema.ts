import { z } from 'zod';
import { forbiddenKeyMessage, isForbiddenKey } from '../keys.js';

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * An object used as a map, with at most `maxEntries` entries.
 * zod's record silently drops a `__proto__` key, so forbidden keys and the
 * entry count are checked on the raw object before the record is parsed.
 */
export function boundedRecord<K extends z.ZodType<string, string>, V extends z.ZodType>(
  keySchema: K,
  valueSchema: V,
  maxEntries: number,
) {
  return z
    .custom<Record<string, unknown>>(isPlainObject, { error: 'must be an object' })
    .superRefine((raw, ctx) => {
      const keys = Object.keys(raw);
      if (keys.length > maxEntries) {
        ctx.addIssue({ code: 'custom', message: `must have at most ${maxEntries} entries` });
        return;
      }
      for (const key of keys) {
        if (isForbiddenKey(key)) ctx.addIssue({ code: 'custom', message: forbiddenKeyMessage(key), path: [key] });
      }
    })
    .pipe(z.record(keySchema, valueSchema));
}
