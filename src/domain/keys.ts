/** Keys of custom fields, tracker fields and steps: `[A-Za-z0-9_.-]{1,64}`, never a prototype name. */
const KEY_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

export function keyProblem(key: string): string | null {
  if (!KEY_PATTERN.test(key)) return 'must be 1-64 characters of A-Z, a-z, 0-9, "_", "." or "-"';
  if (FORBIDDEN_KEYS.has(key)) return `"${key}" is a reserved name`;
  return null;
}

export function isValidKey(key: string): boolean {
  return keyProblem(key) === null;
}
