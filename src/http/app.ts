import Router from '@koa/router';
import Koa from 'koa';
import { DomainError } from '../domain/errors.js';
import type { Logger } from '../config/log.js';
import { errorMiddleware } from './errors.js';
import { clickRedirectHandler, type ClickRouteDeps } from './routes/clicks.js';
import type { ManagementDeps } from './routes/management-deps.js';
import { managementRouter } from './routes/management.js';
import { conversionHandler, postbackHandler, type PostbackDeps } from './routes/postback.js';
import { telegramWebhookHandler, type TelegramRouteDeps } from './routes/telegram.js';

const POSTBACK_PATH = /^\/api\/bots\/webhooks\/([^/]+)\/(updateDialog|conversion)\/?$/;

export interface WebAppDeps {
  log: Logger;
  adminApiKey: string;
  postback: PostbackDeps;
  telegram: TelegramRouteDeps;
  management: ManagementDeps;
  clicks: ClickRouteDeps;
  /** Whether Postgres and Redis answer, for /readyz. */
  ready(): Promise<boolean>;
}

/** The web tier: postbacks, campaign links, the management API and health checks. Stateless; run as many as needed. */
export function createWebApp(deps: WebAppDeps): Koa {
  const app = new Koa({ proxy: true });
  app.use(errorMiddleware(deps.log));

  // The postback route is the hot path: matched directly, ahead of any router.
  const postback = postbackHandler(deps.postback);
  const conversion = conversionHandler(deps.postback);
  app.use(async (ctx, next) => {
    const match = POSTBACK_PATH.exec(ctx.path);
    if (!match) {
      await next();
      return;
    }
    if (ctx.method !== 'GET' && ctx.method !== 'POST') {
      ctx.set('Allow', 'GET, POST');
      throw new DomainError('method_not_allowed', 'method_not_allowed', 'use GET or POST');
    }
    await (match[2] === 'conversion' ? conversion : postback)(ctx, match[1]!);
  });

  const router = new Router();
  const telegram = telegramWebhookHandler(deps.telegram);
  router.post('/telegram/:botId', (ctx) => telegram(ctx, ctx.params.botId!));
  const click = clickRedirectHandler(deps.clicks);
  router.get('/c/:campaignId', (ctx) => click(ctx, ctx.params.campaignId!));
  router.get('/healthz', (ctx) => {
    ctx.body = { ok: true };
  });
  router.get('/readyz', async (ctx) => {
    const ready = await deps.ready().catch(() => false);
    ctx.status = ready ? 200 : 503;
    ctx.body = { ok: ready };
  });

  const management = managementRouter(deps.management, deps.adminApiKey);
  app.use(router.routes()).use(router.allowedMethods());
  app.use(management.routes()).use(management.allowedMethods());
  return app;
}
