import Router from '@koa/router';
import type { Context, Middleware, Next } from 'koa';
import { isDatabaseUnavailable } from '../db/connection.js';
import { DomainError } from '../domain/errors.js';
import { statusOf } from '../http/errors.js';
import { loadBotParam } from '../http/routes/management-deps.js';
import type { RequestState } from '../observability/request-context.js';
import { serveAsset } from './assets.js';
import { crossSite, CSRF_FIELD, sameToken } from './csrf.js';
import { readForm } from './form.js';
import { sendErrorPage } from './layout.js';
import { registerBotPages } from './pages/bots.js';
import { registerBroadcastPages } from './pages/broadcasts.js';
import { registerDeliveryPages } from './pages/deliveries.js';
import { registerDialogPage } from './pages/dialog.js';
import { registerDialogListPage } from './pages/dialogs.js';
import { registerScriptPages } from './pages/script.js';
import { registerSignInPages, signInPath } from './pages/sign-in.js';
import type { ConsoleDeps } from './deps.js';
import { SESSION_COOKIE } from './session.js';
import { consoleState } from './state.js';

const CONSOLE_PREFIX = '/console';

/** Routes open without a session: signing in, and the static files its page needs. */
function isPublic(path: string): boolean {
  return path === `${CONSOLE_PREFIX}/sign-in` || path.startsWith(`${CONSOLE_PREFIX}/assets/`);
}

const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

function securityHeaders(ctx: Context): void {
  ctx.set('Content-Security-Policy', CONTENT_SECURITY_POLICY);
  ctx.set('X-Frame-Options', 'DENY');
  ctx.set('X-Content-Type-Options', 'nosniff');
  ctx.set('Referrer-Policy', 'same-origin');
  ctx.set('Cache-Control', 'no-store');
}

/** Refusals and failures as console pages (never the API's JSON), naming the parameter at fault. */
async function errorPages(ctx: Context, next: Next): Promise<void> {
  try {
    await next();
  } catch (error) {
    if (error instanceof DomainError && error.kind !== 'unavailable') {
      sendErrorPage(ctx, statusOf(error.kind), 'Cannot do that', error.message, error.param);
      return;
    }
    const log = (ctx.state as RequestState).log;
    if (error instanceof DomainError || isDatabaseUnavailable(error)) {
      log.warn({ err: error, path: ctx.path }, 'service unavailable');
      ctx.set('Retry-After', '5');
      sendErrorPage(
        ctx,
        503,
        'Temporarily unavailable',
        'flowpost cannot reach its database or queue; try again shortly.',
      );
      return;
    }
    log.error({ err: error, method: ctx.method, path: ctx.path }, 'console request failed');
    sendErrorPage(ctx, 500, 'Something went wrong', 'The request failed; the error is in the web tier’s log.');
  }
}

/**
 * Every console route but sign-in and assets: a session, or a redirect to sign in. Every POST
 * besides: same-site, and carrying the session's CSRF token (403 otherwise). Its form is read here.
 */
function requireSession(deps: ConsoleDeps): Middleware {
  return async (ctx, next) => {
    if (isPublic(ctx.path)) {
      await next();
      return;
    }
    const session = await deps.sessions.find(ctx.cookies.get(SESSION_COOKIE));
    if (!session) {
      const reading = ctx.method === 'GET' || ctx.method === 'HEAD';
      ctx.status = 303;
      ctx.redirect(signInPath(reading ? ctx.url : undefined));
      return;
    }
    consoleState(ctx).session = session;
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') {
      if (crossSite(ctx)) {
        sendErrorPage(ctx, 403, 'Refused', 'This form was sent from another site.');
        return;
      }
      const form = await readForm(ctx);
      if (!sameToken(form.get(CSRF_FIELD), session.csrf)) {
        sendErrorPage(
          ctx,
          403,
          'Refused',
          'The form’s security token is missing or stale: reload the page and send it again.',
          CSRF_FIELD,
        );
        return;
      }
      consoleState(ctx).form = form;
    }
    await next();
  };
}

/** The console's routes under /console, each behind a session (but sign-in and assets). */
export function consoleRouter(deps: ConsoleDeps): Router {
  const router = new Router({ prefix: CONSOLE_PREFIX });
  router.use(requireSession(deps));
  router.param('botId', loadBotParam(deps.management.db, 'There is no bot with this id.'));
  router.get('/assets/:name', (ctx) => serveAsset(ctx, ctx.params.name!));
  router.get('/', (ctx) => {
    ctx.status = 303;
    ctx.redirect(`${CONSOLE_PREFIX}/bots`);
  });
  registerSignInPages(router, deps);
  registerBotPages(router, deps);
  registerScriptPages(router, deps);
  registerDeliveryPages(router, deps);
  registerDialogListPage(router, deps);
  registerDialogPage(router, deps);
  registerBroadcastPages(router, deps);
  return router;
}

/**
 * The console as one middleware: only requests under /console reach it (the postback path is
 * answered before it), with security headers, HTML error pages and a page for unknown paths.
 */
export function consoleMiddleware(deps: ConsoleDeps): Middleware {
  const router = consoleRouter(deps);
  // Koa's app.use takes these as plain middleware; called directly they need the same view.
  const routes = router.routes() as Middleware;
  const methods = router.allowedMethods() as Middleware;
  return async (ctx, next) => {
    if (ctx.path !== CONSOLE_PREFIX && !ctx.path.startsWith(`${CONSOLE_PREFIX}/`)) {
      await next();
      return;
    }
    (ctx.state as RequestState).route = 'console';
    securityHeaders(ctx);
    await errorPages(ctx, async () => {
      await routes(ctx, async () => {
        await methods(ctx, () => Promise.resolve());
      });
      if (ctx.status === 404 && ctx.body === undefined)
        sendErrorPage(ctx, 404, 'Not found', 'There is no console page at this address.');
    });
  };
}
