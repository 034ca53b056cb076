import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Context } from 'koa';
import { html, type SafeHtml } from './html.js';

/** The hidden form field every console form carries its CSRF token in. */
export const CSRF_FIELD = '_csrf';

/** The pre-session cookie the sign-in form's token is checked against (login CSRF, double submit). */
export const SIGN_IN_COOKIE = 'flowpost_signin';

const TOKEN = /^[0-9a-f]{64}$/;

export function newToken(): string {
  return randomBytes(32).toString('hex');
}

/** Whether a submitted token equals the expected one, compared in constant time. */
export function sameToken(given: string | undefined, expected: string | undefined): boolean {
  if (given === undefined || expected === undefined || !TOKEN.test(given) || !TOKEN.test(expected)) return false;
  return timingSafeEqual(Buffer.from(given), Buffer.from(expected));
}

/**
 * Whether the browser says the request comes from another site: `Sec-Fetch-Site` other than
 * same-origin/none, or an `Origin` other than this console's. Requests without either (curl, old
 * browsers) are judged by their token alone.
 */
export function crossSite(ctx: Context): boolean {
  const site = ctx.get('sec-fetch-site');
  if (site !== '' && site !== 'same-origin' && site !== 'none') return true;
  const origin = ctx.get('origin');
  // (Koa 3's ctx.origin is the Origin header itself: this console's origin is built here.)
  return origin !== '' && origin !== `${ctx.protocol}://${ctx.host}`;
}

/** The hidden input carrying `token`. */
export function csrfInput(token: string): SafeHtml {
  return html`<input type="hidden" name="${CSRF_FIELD}" value="${token}" />`;
}
