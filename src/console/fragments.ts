import { displayTime } from './display-text.js';
import { html, type SafeHtml } from './html.js';

/** Small pieces of markup several pages share. */

/** An `<option>`, selected when its value is `current`. */
export function option(value: string, label: string, current?: string): SafeHtml {
  return html`<option value="${value}" ${value === current ? html`selected` : null}>${label}</option>`;
}

/** A `<time>` of an ISO instant, shown in the console's own format. */
export function timeTag(iso: string): SafeHtml {
  return html`<time datetime="${iso}">${displayTime(iso)}</time>`;
}
