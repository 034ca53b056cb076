import type { TemplateMode } from './types.js';

const HTML_ESCAPES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

// A lone UTF-16 surrogate (high not followed by low, or low not preceded by high).
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (ch) => HTML_ESCAPES[ch] ?? ch);
}

function encodeUtf8Percent(value: string): string {
  // encodeURIComponent throws URIError on lone surrogates; replace them with U+FFFD.
  return encodeURIComponent(value.replace(LONE_SURROGATE, '\uFFFD'));
}

const ONLY_DOTS = /^\.+$/;

/**
 * A value made only of dots is sent with every dot percent-encoded: alone (or beside a literal
 * dot) in a path it would otherwise be a `.` or `..` segment, and the URL would name another path.
 */
function encodeUrlComponent(value: string): string {
  return ONLY_DOTS.test(value) ? '%2E'.repeat(value.length) : encodeUtf8Percent(value);
}

// Printable ASCII: what an HTTP header value carries unambiguously (RFC 9110 VCHAR and space).
const HEADER_SAFE = /^[\x20-\x7e]*$/;
// eslint-disable-next-line no-control-regex -- control characters are what is replaced
const CONTROL_RUNS = /[\x00-\x1f\x7f]+/g;
const NON_ASCII_CHAR = /[\u0080-\u{10ffff}]/gu;

/**
 * A header value: line breaks and other control characters become a space (so a value can never
 * end the header and start another); then a value still holding a character outside printable
 * ASCII (`Иван`, an emoji) is percent-encoded whole as UTF-8 (RFC 3986, as encodeURIComponent), so
 * the HTTP client does not refuse it and the receiver decodes it back exactly.
 */
function encodeHeaderValue(value: string): string {
  if (HEADER_SAFE.test(value)) return value;
  const spaced = value.replace(CONTROL_RUNS, ' ');
  return HEADER_SAFE.test(spaced) ? spaced : encodeUtf8Percent(spaced);
}

/**
 * The last guard on a rendered header: control characters left (the template's own text) become
 * a space, and any character outside ASCII (the template's own text, or a value recorded before
 * values were encoded) its percent-encoded UTF-8.
 */
export function headerSafeText(text: string): string {
  if (HEADER_SAFE.test(text)) return text;
  return text.replace(CONTROL_RUNS, ' ').replace(NON_ASCII_CHAR, (ch) => encodeUtf8Percent(ch));
}

/** JSON string escaping without the surrounding quotes, so `"{{name}}"` in a body stays valid JSON. */
function escapeJsonString(value: string): string {
  return JSON.stringify(value).slice(1, -1);
}

/** Encodes one value's text for where the template output lands. */
export function encodeText(mode: TemplateMode, value: string): string {
  switch (mode) {
    case 'plain':
      return value;
    case 'html':
      return escapeHtml(value);
    case 'url':
      return encodeUrlComponent(value);
    case 'json':
      return escapeJsonString(value);
    case 'header':
      return encodeHeaderValue(value);
  }
}
