/**
 * Splits an HTML-mode message text (Telegram's `parse_mode: 'HTML'`) that is too long for one
 * message into parts that each fit. Pure.
 *
 * - A part is at most `limit` UTF-16 units of HTML source (tags included). Telegram counts the
 *   4096 after parsing, so the source length is a safe upper bound.
 * - Cuts prefer a paragraph break, then a line break, then a space (each only when it leaves the
 *   part at least half full), else the last place that fits. The whitespace at a cut is dropped.
 * - A tag (`<a href="…">`), an entity (`&amp;`) or a surrogate pair is never cut.
 * - Tags open at a cut are closed at the end of the part and opened again, with their
 *   attributes, at the start of the next, so every part is balanced on its own.
 */

export const TELEGRAM_MESSAGE_LIMIT = 4096;

type Token =
  | { kind: 'text'; value: string }
  | { kind: 'open'; name: string; value: string }
  | { kind: 'close'; name: string; value: string };

interface OpenTag {
  name: string;
  value: string;
}

const TAG = /<(\/?)([A-Za-z][A-Za-z0-9-]*)((?:\s+(?:[^>"']|"[^"]*"|'[^']*')*)?)\s*(\/?)>/y;
const ENTITY = /&(?:[A-Za-z][A-Za-z0-9]{1,31}|#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6});/y;
// Tags inside which spaces and indentation are content (only line breaks are dropped at a cut).
const PREFORMATTED = new Set(['pre', 'code']);

function tokenize(html: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < html.length) {
    const ch = html[i]!;
    if (ch === '<') {
      TAG.lastIndex = i;
      const match = TAG.exec(html);
      if (match) {
        const name = match[2]!.toLowerCase();
        const value = match[0];
        if (match[1] === '/') tokens.push({ kind: 'close', name, value });
        else if (match[4] === '/') tokens.push({ kind: 'text', value });
        else tokens.push({ kind: 'open', name, value });
        i += value.length;
        continue;
      }
    } else if (ch === '&') {
      ENTITY.lastIndex = i;
      const match = ENTITY.exec(html);
      if (match) {
        tokens.push({ kind: 'text', value: match[0] });
        i += match[0].length;
        continue;
      }
    }
    const code = html.codePointAt(i)!;
    const value = String.fromCodePoint(code);
    tokens.push({ kind: 'text', value });
    i += value.length;
  }
  return tokens;
}

const closingOf = (name: string): string => `</${name}>`;

/** Applies a tag token to a stack of open tags; a stray closing tag is left alone. */
function applyTag(stack: OpenTag[], token: Token): void {
  if (token.kind === 'open') stack.push({ name: token.name, value: token.value });
  else if (token.kind === 'close') {
    const at = stack.map((t) => t.name).lastIndexOf(token.name);
    if (at >= 0) stack.length = at;
  }
}

function closingLength(stack: readonly OpenTag[]): number {
  let length = 0;
  for (const tag of stack) length += tag.name.length + 3;
  return length;
}

function isSpace(token: Token | undefined): boolean {
  return token?.kind === 'text' && (token.value === ' ' || token.value === '\t' || token.value === '\r');
}

function isNewline(token: Token | undefined): boolean {
  return token?.kind === 'text' && token.value === '\n';
}

type BreakClass = 'paragraph' | 'line' | 'space';

/** The kind of break a cut before token j would be, if it is one. */
function breakClass(tokens: readonly Token[], j: number): BreakClass | null {
  const token = tokens[j];
  if (isNewline(token)) {
    let k = j + 1;
    while (isSpace(tokens[k])) k++;
    return isNewline(tokens[k]) ? 'paragraph' : 'line';
  }
  return isSpace(token) ? 'space' : null;
}

interface Cut {
  at: number;
  fill: number;
  stack: OpenTag[];
}

/** Removes `<b></b>`-style pairs left where a part starts or ends right at a tag. */
function dropEmptyPairs(tokens: Token[]): Token[] {
  const out: Token[] = [];
  for (const token of tokens) {
    const last = out[out.length - 1];
    if (token.kind === 'close' && last?.kind === 'open' && last.name === token.name) out.pop();
    else out.push(token);
  }
  return out;
}

function render(prefix: readonly OpenTag[], body: readonly Token[], open: readonly OpenTag[]): string {
  const tokens: Token[] = [
    ...prefix.map((tag): Token => ({ kind: 'open', name: tag.name, value: tag.value })),
    ...body,
    ...[...open].reverse().map((tag): Token => ({ kind: 'close', name: tag.name, value: closingOf(tag.name) })),
  ];
  return dropEmptyPairs(tokens)
    .map((token) => token.value)
    .join('');
}

/**
 * Splits `html` into parts of at most `limit` characters (see the module comment). A text that
 * already fits is returned as it is, in a one-element array.
 */
export function splitMessage(html: string, limit: number = TELEGRAM_MESSAGE_LIMIT): string[] {
  if (html.length <= limit) return [html];
  const tokens = tokenize(html);
  const parts: string[] = [];
  let stack: OpenTag[] = [];
  let i = 0;
  const minFill = Math.floor(limit / 2);

  while (i < tokens.length) {
    const prefixLength = stack.reduce((sum, tag) => sum + tag.value.length, 0);
    const local = stack.slice();
    let used = prefixLength;
    let closeLength = closingLength(local);
    const best: Partial<Record<BreakClass | 'any', Cut>> = {};
    let j = i;
    let fitsToEnd = false;

    for (;;) {
      if (j > i && used + closeLength <= limit) {
        const cut: Cut = { at: j, fill: used, stack: local.slice() };
        best.any = cut;
        const kind = j < tokens.length ? breakClass(tokens, j) : null;
        if (kind) best[kind] = cut;
      }
      if (j >= tokens.length) {
        fitsToEnd = used + closeLength <= limit;
        break;
      }
      const token = tokens[j]!;
      used += token.value.length;
      if (token.kind !== 'text') {
        applyTag(local, token);
        closeLength = closingLength(local);
      }
      j++;
      if (used > limit) break;
    }

    let cut: Cut;
    if (fitsToEnd) {
      cut = { at: tokens.length, fill: used, stack: local };
    } else {
      const preferred = [best.paragraph, best.line, best.space].find((c) => c !== undefined && c.fill >= minFill);
      const chosen = preferred ?? best.any;
      if (chosen) {
        cut = chosen;
      } else {
        // Not even one token fits beside the re-opened tags: take one anyway rather than loop.
        const forced = stack.slice();
        applyTag(forced, tokens[i]!);
        cut = { at: i + 1, fill: limit, stack: forced };
      }
    }

    const body = tokens.slice(i, cut.at);
    const part = render(stack, body, cut.stack);
    if (part.trim() !== '') parts.push(part);
    stack = cut.stack;
    i = cut.at;

    // Drop the whitespace at the cut; inside <pre>/<code> only line breaks, to keep indentation.
    const preformatted = stack.some((tag) => PREFORMATTED.has(tag.name));
    while (i < tokens.length && (isNewline(tokens[i]) || (!preformatted && isSpace(tokens[i])))) i++;
  }
  return parts;
}
