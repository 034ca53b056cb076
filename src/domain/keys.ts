import { z } from 'zod';

/** Keys of custom fields, tracker fields and steps, and tag texts: `[A-Za-z0-9_.-]{1,64}`. */
const KEY_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;

/** Keys that would reach Object.prototype when used as property names. */
const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

const KEY_FORMAT_MESSAGE = 'must be 1-64 characters of A-Z, a-z, 0-9, "_", "." or "-"';

export function isForbiddenKey(key: string): boolean {
  return FORBIDDEN_KEYS.has(key);
}

export function isValidKey(value: unknown): value is string {
  return typeof value === 'string' && KEY_PATTERN.test(value) && !isForbiddenKey(value);
}

export function forbiddenKeyMessage(key: string): string {
  return `"${key}" is not allowed as a key`;
}

/** Why a key is refused, or null when it is fine. */
export function keyProblem(key: string): string | null {
  if (!KEY_PATTERN.test(key)) return KEY_FORMAT_MESSAGE;
  if (isForbiddenKey(key)) return `"${key}" is a reserved name`;
  return null;
}

export const keySchema = z
  .string()
  .regex(KEY_PATTERN, KEY_FORMAT_MESSAGE)
  .refine((key) => !isForbiddenKey(key), { error: (issue) => forbiddenKeyMessage(String(issue.input)) });
