import { createHash, timingSafeEqual } from 'node:crypto';
import type Router from '@koa/router';
import type { Context } from 'koa';
import { crossSite, csrfInput, CSRF_FIELD, newToken, sameToken, SIGN_IN_COOKIE } from '../csrf.js';
import { readForm } from '../form.js';
import { html } from '../html.js';
import { sendPage, withNotice } from '../layout.js';
import type { ConsoleDeps } from '../deps.js';
import { SESSION_COOKIE } from '../session.js';
import { consoleState, sessionOf } from '../state.js';

const SIGN_IN = '/console/sign-in';

/**
 * Where to go after signing in: only a path of this console (no other host, no scheme, no `//`, no
 * backslash a browser might read as a slash), else the bots list.
 */
export function safeNext(next: unknown): string {
  if (typeof next !== 'string') return '/console/bots';
  return /^\/console(?:[/?][^\\\s]*)?$/.test(next) && !next.startsWith(SIGN_IN) ? next : '/console/bots';
}

/** The sign-in page, returning to `next` (a console path) afterwards. */
export function signInPath(next?: string): string {
  return next === undefined || safeNext(next) !== next ? SIGN_IN : `${SIGN_IN}?next=${encodeURIComponent(next)}`;
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** httpOnly, SameSite=Strict, only for /console, Secure over https; without a lifetime, until the browser closes. */
function cookieOptions(ctx: Context, maxAgeSeconds?: number) {
  return {
    httpOnly: true,
    sameSite: 'strict' as const,
    path: '/console',
    secure: ctx.secure,
    overwrite: true,
    ...(maxAgeSeconds === undefined ? {} : { maxAge: maxAgeSeconds * 1000 }),
  };
}

/** The sign-in form with a fresh login-CSRF token, set in a pre-session cookie too (double submit). */
function sendSignInForm(ctx: Context, next: string, status = 200, problem?: string): void {
  const token = newToken();
  ctx.cookies.set(SIGN_IN_COOKIE, token, cookieOptions(ctx, 60 * 60));
  sendPage(ctx, {
    title: 'Sign in',
    status,
    body: html`<form method="post" action="${SIGN_IN}" class="stack narrow">
      ${csrfInput(token)}
      <input type="hidden" name="next" value="${next}" />
      ${problem ? html`<p class="error" role="alert" id="sign-in-problem">${problem}</p>` : null}
      <label for="admin-key">Admin key</label>
      <input
        id="admin-key"
        name="key"
        type="password"
        autocomplete="current-password"
        required${problem ? html` aria-invalid="true" aria-describedby="sign-in-problem"` : null}
      />
      <p class="hint">The <code>ADMIN_API_KEY</code> this flowpost runs with.</p>
      <button type="submit">Sign in</button>
    </form>`,
  });
}

export function registerSignInPages(router: Router, deps: ConsoleDeps): void {
  const expected = digest(deps.adminApiKey);

  router.get('/sign-in', async (ctx) => {
    const next = safeNext(ctx.query.next);
    if (await deps.sessions.find(ctx.cookies.get(SESSION_COOKIE))) {
      ctx.status = 303;
      ctx.redirect(next);
      return;
    }
    sendSignInForm(ctx, next);
  });

  router.post('/sign-in', async (ctx) => {
    if (crossSite(ctx)) {
      sendSignInForm(ctx, '/console/bots', 403, 'This sign-in came from another site and was refused.');
      return;
    }
    const form = await readForm(ctx);
    const next = safeNext(form.get('next'));
    if (!sameToken(form.get(CSRF_FIELD), ctx.cookies.get(SIGN_IN_COOKIE))) {
      sendSignInForm(ctx, next, 403, 'The sign-in form expired: enter the key again.');
      return;
    }
    const key = form.get('key') ?? '';
    // Digests have equal length whatever was typed: the comparison takes the same time.
    if (!timingSafeEqual(digest(key), expected)) {
      sendSignInForm(ctx, next, 401, key === '' ? 'Enter the admin key (key).' : 'That is not the admin key.');
      return;
    }
    const session = await deps.sessions.create();
    // The session's lifetime is kept in Redis (12 hours after its last request, sliding).
    ctx.cookies.set(SESSION_COOKIE, session.id, cookieOptions(ctx));
    ctx.cookies.set(SIGN_IN_COOKIE, null, { path: '/console' });
    ctx.status = 303;
    ctx.redirect(next);
  });

  router.post('/sign-out', async (ctx) => {
    await deps.sessions.revoke(sessionOf(ctx).id);
    consoleState(ctx).session = undefined;
    ctx.cookies.set(SESSION_COOKIE, null, { path: '/console' });
    ctx.status = 303;
    ctx.redirect(withNotice(SIGN_IN, 'signed-out'));
  });
}
