/**
 * Converts the single-brace placeholder form (`{name}`, `{fields.x}`,
 * `{tracker.x}`, `{KEY}`) into Handlebars lookups before compiling.
 *
 * `{{…}}`, `{{{…}}}` and comments are copied untouched, and a `{` that does
 * not start a valid placeholder is literal text, so JSON bodies such as
 * `{"a": "{chatId}"}` keep their braces.
 */
import { BUILTIN_NAMES } from './context.js';

const PLACEHOLDER = /\{(?:(fields|tracker)\.)?([A-Za-z0-9_.-]{1,64})\}/y;
const LINE_BREAK = /\r\n?|\n/g;

interface Edit {
  /** Range of the replacement in the converted text. */
  from: number;
  to: number;
  /** Range of the placeholder in the source. */
  sourceFrom: number;
  sourceTo: number;
}

export interface ConvertedTemplate {
  /** Handlebars source. Same line breaks as the original, so line numbers agree. */
  readonly text: string;
  /** Maps a Handlebars position (1-based line, 0-based column) to the 1-based source position. */
  readonly locate: (line: number, column: number) => { line: number; column: number };
}

/** Where the `{{…}}` starting at `start` ends (exclusive); the whole rest if it is unclosed. */
function mustacheEnd(source: string, start: number): number {
  let close = '}}';
  if (source.startsWith('{{!--', start)) close = '--}}';
  else if (source.startsWith('{{{{', start)) close = '}}}}';
  else if (source.startsWith('{{{', start)) close = '}}}';
  const at = source.indexOf(close, start + 2);
  return at < 0 ? source.length : at + close.length;
}

function lookupFor(namespace: string | undefined, key: string): string {
  if (namespace !== undefined) return `${namespace}.[${key}]`;
  return BUILTIN_NAMES.has(key) ? key : `fields.[${key}]`;
}

function lineStarts(text: string): number[] {
  const starts = [0];
  for (const match of text.matchAll(LINE_BREAK)) starts.push(match.index + match[0].length);
  return starts;
}

function positionAt(starts: readonly number[], offset: number): { line: number; column: number } {
  let line = 0;
  while (line + 1 < starts.length && (starts[line + 1] ?? Infinity) <= offset) line += 1;
  return { line: line + 1, column: offset - (starts[line] ?? 0) + 1 };
}

export function convertPlaceholders(source: string): ConvertedTemplate {
  let text = '';
  const edits: Edit[] = [];
  let i = 0;
  while (i < source.length) {
    const open = source.indexOf('{', i);
    if (open < 0) {
      text += source.slice(i);
      break;
    }
    text += source.slice(i, open);
    if (source.startsWith('{{', open)) {
      const end = mustacheEnd(source, open);
      text += source.slice(open, end);
      i = end;
      continue;
    }
    PLACEHOLDER.lastIndex = open;
    const match = PLACEHOLDER.exec(source);
    if (match === null) {
      text += '{';
      i = open + 1;
      continue;
    }
    const end = open + match[0].length;
    // A backslash right before "{{" would escape it; doubling it keeps the backslash literal.
    const escape = source[open - 1] === '\\' ? '\\' : '';
    // "}}}" would read as a triple-stash close; "~}}" closes the tag and strips nothing before a "}".
    const close = source[end] === '}' ? '~}}' : '}}';
    const replacement = `${escape}{{${lookupFor(match[1], match[2] ?? '')}${close}`;
    edits.push({ from: text.length, to: text.length + replacement.length, sourceFrom: open, sourceTo: end });
    text += replacement;
    i = end;
  }

  return {
    text,
    locate(line, column) {
      const offset = (lineStarts(text)[line - 1] ?? 0) + column;
      let sourceOffset = offset;
      for (const edit of edits) {
        if (edit.from > offset) break;
        sourceOffset = offset < edit.to ? edit.sourceFrom : edit.sourceTo + (offset - edit.to);
      }
      return positionAt(lineStarts(source), sourceOffset);
    },
  };
}
