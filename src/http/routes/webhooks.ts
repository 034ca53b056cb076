import type Router from '@koa/router';
import { z } from 'zod';
import { deleteEndpoint, insertEndpoint, listEndpoints, type PostbackEndpoint } from '../../db/postback-endpoints.js';
import { DomainError } from '../../domain/errors.js';
import { readJsonBody } from '../body.js';
import { parseBody, UUID_PATTERN } from '../validation.js';
import { currentBot, type ManagementDeps } from './management-deps.js';

export const createWebhookSchema = z.strictObject({
  name: z.string().trim().min(1).max(200),
  /** Requests a second this URL accepts (per web process); defaults to POSTBACK_RATE_LIMIT. */
  rateLimit: z.number().int().min(1).max(1_000_000).optional(),
});

/** A postback endpoint's two public URLs (API.md §1 and §5). */
export function postbackUrls(publicUrl: string, endpointId: string): { updateDialog: string; conversion: string } {
  const base = `${publicUrl}/api/bots/webhooks/${endpointId}`;
  return { updateDialog: `${base}/updateDialog`, conversion: `${base}/conversion` };
}

export function registerWebhookRoutes(router: Router, deps: ManagementDeps): void {
  const json = (endpoint: PostbackEndpoint) => ({
    id: endpoint.id,
    name: endpoint.name,
    url: postbackUrls(deps.publicUrl, endpoint.id).updateDialog,
    rateLimit: endpoint.rateLimit,
    createdAt: endpoint.createdAt.toISOString(),
  });

  router.post('/bots/:botId/webhooks', async (ctx) => {
    const input = parseBody(createWebhookSchema, await readJsonBody(ctx));
    const endpoint = await insertEndpoint(deps.db, currentBot(ctx).id, input.name, input.rateLimit ?? null);
    await deps.invalidate({ kind: 'endpoint', id: endpoint.id });
    ctx.status = 201;
    ctx.body = json(endpoint);
  });

  router.get('/bots/:botId/webhooks', async (ctx) => {
    ctx.body = { webhooks: (await listEndpoints(deps.db, currentBot(ctx).id)).map(json) };
  });

  router.delete('/bots/:botId/webhooks/:id', async (ctx) => {
    const id = ctx.params.id!;
    if (!UUID_PATTERN.test(id) || !(await deleteEndpoint(deps.db, currentBot(ctx).id, id.toLowerCase()))) {
      throw new DomainError('not_found', 'unknown_webhook', 'no webhook with this id on this bot', { param: 'id' });
    }
    await deps.invalidate({ kind: 'endpoint', id: id.toLowerCase() });
    ctx.status = 204;
  });
}
