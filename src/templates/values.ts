/**
 * Render-time value representations.
 *
 * Every value a template can print is encoded once, when the render context is
 * built, for the template's mode. Text is held in objects whose prototype chain
 * has no string-named members (so no template path can reach a prototype, a
 * constructor, or individual characters of the encoded text); Handlebars appends
 * a value with `buffer += value`, which calls `Symbol.toPrimitive` and yields the
 * encoded text. Numbers and booleans stay primitives so `{{#if}}` keeps its
 * usual truthiness; the empty string stays `''` (falsy, nothing to leak).
 */
import { encodeText } from './encode.js';
import type { TemplateMode } from './types.js';

const PLAIN = Symbol('plain text');
const ENCODED = Symbol('encoded text');

interface TextCarrier {
  [PLAIN]: string;
  [ENCODED]: string;
}

/** A non-empty piece of text (value or list); prints as its encoded form. */
export type TextValue = TextCarrier;
/** A list (multiselect); a real array so `{{#each}}` works, prints joined with ", ". */
export type ListValue = (TextValue | number | boolean)[] & TextCarrier;
/** An object of named values (root context, fields, tracker); prints as empty. */
export type BagValue = TextCarrier & { [key: string]: RenderValue };

export type ScalarValue = TextValue | number | boolean | '' | null;
export type RenderValue = ScalarValue | ListValue | BagValue;

const OUTPUT_PROTO: object = Object.freeze(
  Object.create(null, {
    [Symbol.toPrimitive]: {
      value(this: TextCarrier): string {
        return this[ENCODED];
      },
    },
  }) as object,
);

function carry<T extends object>(target: T, plain: string, encoded: string): T & TextCarrier {
  Object.defineProperty(target, PLAIN, { value: plain });
  Object.defineProperty(target, ENCODED, { value: encoded });
  return target as T & TextCarrier;
}

function isCarrier(value: unknown): value is TextCarrier {
  return typeof value === 'object' && value !== null && PLAIN in value;
}

function encodedText(plain: string, encoded: string): TextValue {
  return carry(Object.create(OUTPUT_PROTO) as object, plain, encoded);
}

export function textValue(mode: TemplateMode, plain: string): TextValue | '' {
  return plain === '' ? '' : encodedText(plain, encodeText(mode, plain));
}

function numberValue(mode: TemplateMode, value: number): number | TextValue {
  const plain = String(value);
  const encoded = encodeText(mode, plain);
  // Only exponent forms like 1e+21 change when encoded (the "+" in a URL); they are non-zero, so truthiness holds.
  return encoded === plain ? value : encodedText(plain, encoded);
}

/** ISO 8601 UTC with milliseconds, or null for a missing/invalid date. */
export function isoDate(value: unknown): string | null {
  if (!(value instanceof Date) && typeof value !== 'string') return null;
  const date = value instanceof Date ? value : new Date(value);
  return Number.isNaN(date.getTime()) ? null : date.toISOString();
}

export function scalarValue(mode: TemplateMode, value: unknown): ScalarValue {
  switch (typeof value) {
    case 'string':
      return textValue(mode, value);
    case 'number':
      return numberValue(mode, value);
    case 'boolean':
      return value;
    case 'bigint':
      return textValue(mode, value.toString());
    default:
      if (value instanceof Date) {
        const iso = isoDate(value);
        return iso === null ? null : textValue(mode, iso);
      }
      return null; // null, undefined, objects, functions, symbols: render empty
  }
}

const LIST_SEPARATOR = ', ';

function listValue(mode: TemplateMode, items: readonly unknown[]): ListValue {
  const values: (TextValue | number | boolean)[] = [];
  for (const item of items) {
    const value = scalarValue(mode, item);
    if (value !== null && value !== '') values.push(value);
  }
  const plain = values.map(plainText).join(LIST_SEPARATOR);
  const encoded = values.map(outputText).join(encodeText(mode, LIST_SEPARATOR));
  Object.setPrototypeOf(values, OUTPUT_PROTO);
  return carry(values, plain, encoded);
}

export function fieldValue(mode: TemplateMode, value: unknown): RenderValue {
  return Array.isArray(value) ? listValue(mode, value) : scalarValue(mode, value);
}

export function emptyBag(): BagValue {
  return carry(Object.create(OUTPUT_PROTO) as object, '', '') as BagValue;
}

export function setEntry(bag: BagValue, key: string, value: RenderValue): void {
  // defineProperty, not assignment: keys such as "__proto__" must become plain own data.
  Object.defineProperty(bag, key, { value, enumerable: true, writable: false, configurable: false });
}

/** The unencoded text of a value, as used by comparisons (`eq`). Unknown things are "". */
export function plainText(value: unknown): string {
  if (isCarrier(value)) return value[PLAIN];
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
    return String(value);
  }
  return '';
}

function outputText(value: TextValue | number | boolean): string {
  return isCarrier(value) ? value[ENCODED] : String(value);
}
