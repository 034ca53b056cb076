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

function encodeUrlComponent(value: string): string {
  // encodeURIComponent throws URIError on lone surrogates; replace them with U+FFFD.
  return encodeURIComponent(value.replace(LONE_SURROGATE, '\uFFFD'));
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
  }
}
