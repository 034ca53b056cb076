import Router from '@koa/router';
import { bearerAuth } from '../auth.js';
import { registerOpenApiRoute } from '../openapi/route.js';
import { registerBotRoutes } from './bots.js';
import { registerBroadcastRoutes } from './broadcasts.js';
import { registerCampaignRoutes } from './campaigns.js';
import { registerDeadLetterRoutes } from './dead-letters.js';
import { registerDeliveryRoutes } from './deliveries.js';
import { registerDestinationRoutes } from './destinations.js';
import { registerDialogMessageRoutes } from './dialog-messages.js';
import { registerDialogRoutes } from './dialogs.js';
import { registerFieldRoutes } from './fields.js';
import { loadBotParam, type ManagementDeps } from './management-deps.js';
import { registerOperatorRoutes } from './operator.js';
import { registerScriptRoutes } from './script.js';
import { registerWebhookRoutes } from './webhooks.js';

/** The management API under /api/v1, every call behind the admin bearer key. */
export function managementRouter(deps: ManagementDeps, adminApiKey: string): Router {
  const router = new Router({ prefix: '/api/v1' });
  router.use(bearerAuth(adminApiKey));
  router.param('botId', loadBotParam(deps.db, 'no bot with this id'));
  registerBotRoutes(router, deps);
  registerFieldRoutes(router, deps);
  registerWebhookRoutes(router, deps);
  registerScriptRoutes(router, deps);
  registerDialogRoutes(router, deps);
  registerDialogMessageRoutes(router, deps);
  registerOperatorRoutes(router, deps);
  registerDeliveryRoutes(router, deps);
  registerDeadLetterRoutes(router, deps);
  registerDestinationRoutes(router, deps);
  registerCampaignRoutes(router, deps);
  registerBroadcastRoutes(router, deps);
  registerOpenApiRoute(router, deps.publicUrl);
  return router;
}
