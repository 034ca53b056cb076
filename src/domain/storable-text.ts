/**
 * Text Postgres can store. Postgres `text` refuses U+0000, and `jsonb` refuses both `\u0000` and an
 * unpaired surrogate; the driver would otherwise turn such a value into an error (a 500, or a job
 * failing later) or silently into U+FFFD. Input carrying one is refused where it arrives.
 */

const SURROGATE = /[\ud800-\udfff]/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Why a text cannot be stored, or null when it can. */
export function unstorableTextProblem(text: string): string | null {
  if (text.includes('\u0000')) return 'must not contain U+0000';
  if (SURROGATE.test(text) && LONE_SURROGATE.test(text)) return 'is not valid Unicode (an unpaired surrogate)';
  return null;
}

/** Where in a JSON value (a string or an object key) the first text that cannot be stored is, and why. */
export function findUnstorableText(
  value: unknown,
  path: ReadonlyArray<string | number> = [],
): { path: Array<string | number>; problem: string } | null {
  if (typeof value === 'string') {
    const problem = unstorableTextProblem(value);
    return problem === null ? null : { path: [...path], problem };
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = findUnstorableText(value[i], [...path, i]);
      if (found) return found;
    }
    return null;
  }
  if (value !== null && typeof value === 'object') {
    for (const key of Object.keys(value)) {
      const keyProblem = unstorableTextProblem(key);
      if (keyProblem !== null) return { path: [...path, key], problem: `key ${keyProblem}` };
      const found = findUnstorableText((value as Record<string, unknown>)[key], [...path, key]);
      if (found) return found;
    }
  }
  return null;
}
