/** Evaluation of one `condition` step condition against a dialog. */
import type { FieldValue } from '../dialog.js';
import type { Condition, ScalarValue } from '../script/types.js';

export interface ConditionDialog {
  fields: Record<string, FieldValue>;
  tracker: Record<string, string>;
  tags: readonly string[];
}

/** How a list (multiselect) prints, as in templates. */
const LIST_SEPARATOR = ', ';
const NUMBER = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

type Subject = FieldValue | undefined;

function own<T>(record: Record<string, T>, key: string): T | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}

/** A finite number from a number or a decimal numeric string; null otherwise. */
function asNumber(value: unknown): number | null {
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  if (typeof value !== 'string') return null;
  const trimmed = value.trim();
  if (!NUMBER.test(trimmed)) return null;
  const number = Number(trimmed);
  return Number.isFinite(number) ? number : null;
}

function asText(value: Subject): string {
  if (value === undefined) return '';
  return Array.isArray(value) ? value.join(LIST_SEPARATOR) : String(value);
}

function isEqual(subject: Subject, value: ScalarValue | undefined): boolean {
  if (subject === undefined || value === undefined) return false;
  const left = Array.isArray(subject) ? null : asNumber(subject);
  const right = asNumber(value);
  if (left !== null && right !== null) return left === right;
  return asText(subject) === String(value);
}

function compare(subject: Subject, value: ScalarValue | undefined, op: 'gt' | 'lt'): boolean {
  if (Array.isArray(subject)) return false;
  const left = asNumber(subject);
  const right = asNumber(value);
  if (left === null || right === null) return false;
  return op === 'gt' ? left > right : left < right;
}

function contains(subject: Subject, value: ScalarValue | undefined): boolean {
  if (subject === undefined || value === undefined) return false;
  const needle = String(value);
  return Array.isArray(subject) ? subject.includes(needle) : String(subject).includes(needle);
}

function isPresent(subject: Subject): boolean {
  if (subject === undefined) return false;
  if (Array.isArray(subject)) return subject.length > 0;
  if (typeof subject === 'string') return subject.trim() !== '';
  return true;
}

function evaluateOnTags(condition: Condition, tags: readonly string[]): boolean {
  const tag = condition.value === undefined ? undefined : String(condition.value);
  switch (condition.op) {
    case 'has':
    case 'is':
      return tag !== undefined && tags.includes(tag);
    case 'not':
      return tag === undefined || !tags.includes(tag);
    case 'exists':
      return tags.length > 0;
    case 'gt':
    case 'lt':
      return false;
  }
}

/**
 * Whether `condition` holds for the dialog.
 * - `is`: equal as text, or numerically when both sides parse as numbers ("5000" is 5000.0); case-sensitive.
 *   A list (multiselect) compares as its items joined with ", ".
 * - `not`: not `is` (so true for a missing field); on `tags`, the tag is absent.
 * - `gt` / `lt`: numeric; false when either side is not a number.
 * - `has`: a text contains the value, a list includes it; on `tags`, the tag is present.
 * - `exists`: present and not empty (blank text and empty lists are empty); on `tags`, any tag.
 */
export function evaluateCondition(condition: Condition, dialog: ConditionDialog): boolean {
  const { subject, op, value } = condition;
  if (subject === 'tags') return evaluateOnTags(condition, dialog.tags);
  let current: Subject;
  if (subject.startsWith('fields.')) current = own(dialog.fields, subject.slice('fields.'.length));
  else if (subject.startsWith('tracker.')) current = own(dialog.tracker, subject.slice('tracker.'.length));
  else return false;
  switch (op) {
    case 'is':
      return isEqual(current, value);
    case 'not':
      return !isEqual(current, value);
    case 'gt':
    case 'lt':
      return compare(current, value, op);
    case 'has':
      return contains(current, value);
    case 'exists':
      return isPresent(current);
  }
}
