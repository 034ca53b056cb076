import Router from '@koa/router';
import type { Redis } from 'ioredis';
import Koa, { type Middleware } from 'koa';
import { consoleMiddleware } from '../console/router.js';
import { SessionStore } from '../console/session.js';
import { DomainError } from '../domain/errors.js';
import type { Logger } from '../config/log.js';
import { registry } from '../observability/metrics.js';
import { QUEUE_DASHBOARD_PATH } from '../observability/queue-dashboard.js';
import type { Readiness } from '../observability/readiness.js';
import { requestContext, type RequestState } from '../observability/request-context.js';
import { dashboardAuth, METRICS_UNAUTHORIZED, metricsAuthorized } from './auth.js';
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
  /** Bearer token GET /metrics requires; unset: /metrics is open. */
  metricsToken?: string | undefined;
  postback: PostbackDeps;
  telegram: TelegramRouteDeps;
  management: ManagementDeps;
  clicks: ClickRouteDeps;
  /** What /readyz answers: Postgres, Redis and (in a process running workers) the workers. */
  readiness(): Promise<Readiness>;
  /** The queue dashboard (bull-board), served behind the admin key at /admin/queues. */
  queueDashboard?: Middleware;
  /** Where the web console keeps its sessions: this Redis, under the BullMQ prefix. */
  console: { redis: Redis; queuePrefix: string };
}

/** The web tier: postbacks, campaign links, the management API and health checks. Stateless; run as many as needed. */
export function createWebApp(deps: WebAppDeps): Koa {
  const app = new Koa({ proxy: true });
  app.use(requestContext(deps.log));
  // Refusals and failures are logged with the request's id.
  app.use(errorMiddleware((ctx) => (ctx.state as RequestState).log));

  // The postback route is the hot path: matched directly, ahead of any router.
  const postback = postbackHandler(deps.postback);
  const conversion = conversionHandler(deps.postback);
  app.use(async (ctx, next) => {
    const match = POSTBACK_PATH.exec(ctx.path);
    if (!match) {
      await next();
      return;
    }
    const route = match[2] === 'conversion' ? 'conversion' : 'updateDialog';
    (ctx.state as RequestState).route = route;
    if (ctx.method !== 'GET' && ctx.method !== 'POST') {
      ctx.set('Allow', 'GET, POST');
      throw new DomainError('method_not_allowed', 'method_not_allowed', 'use GET or POST');
    }
    await (route === 'conversion' ? conversion : postback)(ctx, match[1]!);
  });

  if (deps.queueDashboard) {
    const auth = dashboardAuth(deps.adminApiKey);
    const dashboard = deps.queueDashboard;
    app.use(async (ctx, next): Promise<void> => {
      if (ctx.path !== QUEUE_DASHBOARD_PATH && !ctx.path.startsWith(`${QUEUE_DASHBOARD_PATH}/`)) {
        await next();
        return;
      }
      (ctx.state as RequestState).route = 'queue_dashboard';
      await auth(ctx, async () => {
        await dashboard(ctx, next);
      });
    });
  }

  // The web console under /console: after the postback path, so postbacks never reach it.
  app.use(
    consoleMiddleware({
      management: deps.management,
      sessions: new SessionStore(deps.console.redis, deps.console.queuePrefix, deps.adminApiKey),
      adminApiKey: deps.adminApiKey,
    }),
  );

  const router = new Router();
  const named = (ctx: Koa.Context, route: NonNullable<RequestState['route']>) =>
    ((ctx.state as RequestState).route = route);
  const telegram = telegramWebhookHandler(deps.telegram);
  router.post('/telegram/:botId', (ctx) => {
    named(ctx, 'telegram_webhook');
    return telegram(ctx, ctx.params.botId!);
  });
  const click = clickRedirectHandler(deps.clicks);
  router.get('/c/:campaignId', (ctx) => {
    named(ctx, 'click_redirect');
    return click(ctx, ctx.params.campaignId!);
  });
  // Liveness only: the process answers. Whether it can work is /readyz.
  router.get('/healthz', (ctx) => {
    named(ctx, 'healthz');
    ctx.body = { ok: true };
  });
  router.get('/readyz', async (ctx) => {
    named(ctx, 'readyz');
    const readiness = await deps.readiness();
    ctx.status = readiness.ok ? 200 : 503;
    ctx.body = readiness;
  });
  router.get('/metrics', async (ctx) => {
    named(ctx, 'metrics');
    if (!metricsAuthorized(ctx.get('authorization') || undefined, deps.metricsToken)) {
      ctx.set('WWW-Authenticate', 'Bearer');
      ctx.status = 401;
      ctx.body = METRICS_UNAUTHORIZED;
      return;
    }
    ctx.type = registry.contentType;
    ctx.body = await registry.metrics();
  });

  const management = managementRouter(deps.management, deps.adminApiKey);
  app.use(router.routes()).use(router.allowedMethods());
  app.use(management.routes()).use(management.allowedMethods());
  return app;
}
