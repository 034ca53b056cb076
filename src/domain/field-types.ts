import type { FieldValue } from './dialog.js';
import { isHttpUrl } from './urls.js';

export const FIELD_TYPES = ['text', 'number', 'date', 'link', 'select', 'multiselect'] as const;
export type FieldType = (typeof FIELD_TYPES)[number];

export interface FieldDefinition {
  key: string;
  name: string;
  type: FieldType;
  options: string[] | null;
}

/** A value as it arrives in a postback: strings from a query or form, JSON scalars or string arrays. */
export type RawValue = string | number | boolean | null | string[];

export type ParsedField = { ok: true; value: FieldValue | null } | { ok: false; reason: string };

const NUMBER_PATTERN = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;
const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;
const DATE_TIME = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?$/;
const HAS_OFFSET = /(Z|[+-]\d{2}:?\d{2})$/;

/** Whether `YYYY-MM-DD` names a day that exists. */
function isCalendarDate(text: string): boolean {
  const date = new Date(`${text}T00:00:00Z`);
  return !Number.isNaN(date.getTime()) && date.toISOString().startsWith(text);
}

function asText(raw: RawValue): string {
  return Array.isArray(raw) ? raw.join(',') : String(raw);
}

function splitList(raw: RawValue): string[] {
  const items = Array.isArray(raw) ? raw : String(raw).split(',');
  return items.map((item) => item.trim()).filter((item) => item !== '');
}

/**
 * Parses a postback value for a field. An undefined field (no definition) is stored as text.
 * `null`, or an empty value for a typed field, clears the field.
 */
export function parseFieldValue(definition: FieldDefinition | undefined, raw: RawValue): ParsedField {
  if (raw === null) return { ok: true, value: null };
  const type = definition?.type ?? 'text';
  if (type === 'text') return { ok: true, value: asText(raw) };
  if (typeof raw === 'string' && raw.trim() === '') return { ok: true, value: null };

  switch (type) {
    case 'number': {
      if (typeof raw === 'number')
        return Number.isFinite(raw) ? { ok: true, value: raw } : { ok: false, reason: 'must be a finite number' };
      const text = asText(raw).trim();
      const value = Number(text);
      return NUMBER_PATTERN.test(text) && Number.isFinite(value)
        ? { ok: true, value }
        : { ok: false, reason: 'must be a number' };
    }
    case 'date': {
      const text = asText(raw).trim();
      if (DATE_ONLY.test(text)) {
        return isCalendarDate(text)
          ? { ok: true, value: text }
          : { ok: false, reason: 'must be a date (YYYY-MM-DD or ISO 8601)' };
      }
      // The day must exist (no 2024-02-30 rolling into March); a time without an offset is UTC, never the server's zone.
      const valid = DATE_TIME.test(text) && isCalendarDate(text.slice(0, 10));
      const date = valid ? new Date(`${text.slice(0, 10)}T${text.slice(11)}${HAS_OFFSET.test(text) ? '' : 'Z'}`) : null;
      return date && !Number.isNaN(date.getTime())
        ? { ok: true, value: date.toISOString() }
        : { ok: false, reason: 'must be a date (YYYY-MM-DD or ISO 8601)' };
    }
    case 'link': {
      const text = asText(raw).trim();
      return isHttpUrl(text) ? { ok: true, value: text } : { ok: false, reason: 'must be an http(s) URL' };
    }
    case 'select': {
      const text = asText(raw).trim();
      const options = definition?.options;
      return !options || options.includes(text)
        ? { ok: true, value: text }
        : { ok: false, reason: `must be one of: ${options.join(', ')}` };
    }
    case 'multiselect': {
      const items = splitList(raw);
      const options = definition?.options;
      const unknown = options ? items.filter((item) => !options.includes(item)) : [];
      return unknown.length === 0
        ? { ok: true, value: [...new Set(items)] }
        : { ok: false, reason: `"${unknown[0]}" is not one of: ${options!.join(', ')}` };
    }
  }
}
