/**
 * HTML built from template literals: every interpolated value is escaped unless it is already a
 * `SafeHtml` fragment (made only by `html` itself), so a page cannot carry markup from its data.
 */
const SAFE: unique symbol = Symbol('SafeHtml');

export interface SafeHtml {
  readonly [SAFE]: true;
  readonly text: string;
}

/** What a page may interpolate: text (escaped), a fragment, or a list of them; null/undefined/false render nothing. */
export type HtmlValue = SafeHtml | string | number | bigint | boolean | null | undefined | readonly HtmlValue[];

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
  '`': '&#96;',
};

/** Escapes text for an element's content or a quoted attribute value. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"'`]/g, (char) => ESCAPES[char]!);
}

function fragment(text: string): SafeHtml {
  return { [SAFE]: true, text };
}

function isSafe(value: object): value is SafeHtml {
  return (value as Partial<SafeHtml>)[SAFE] === true;
}

function render(value: HtmlValue): string {
  if (value === null || value === undefined || value === false) return '';
  if (typeof value === 'object') {
    if (isSafe(value)) return value.text;
    // Anything else object-like (a forged fragment) is text like any other value.
    if (!Array.isArray(value)) return escapeHtml(Object.prototype.toString.call(value));
    return value.map(render).join('');
  }
  return escapeHtml(String(value));
}

/** `html\`<p>${text}</p>\``: the literal parts are trusted markup, the values are escaped. */
export function html(strings: TemplateStringsArray, ...values: HtmlValue[]): SafeHtml {
  let text = strings[0]!;
  values.forEach((value, i) => {
    text += render(value) + strings[i + 1]!;
  });
  return fragment(text);
}

/** One fragment per item, rendered one after another. */
export function each<T>(items: Iterable<T>, item: (value: T, index: number) => SafeHtml): SafeHtml {
  return fragment(Array.from(items, (value, index) => item(value, index).text).join(''));
}

/** The fragment's markup, for a response body. */
export function toHtmlString(value: SafeHtml): string {
  return value.text;
}
