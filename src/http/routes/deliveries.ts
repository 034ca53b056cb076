import type Router from '@koa/router';
import { z } from 'zod';
import {
  DELIVERY_STATES,
  findDelivery,
  listDeliveries,
  replayDeliveries,
  type DeliveryRecord,
} from '../../db/deliveries.js';
import { DomainError } from '../../domain/errors.js';
import { readJsonBody } from '../body.js';
import { parseBody, UUID_PATTERN } from '../validation.js';
import { currentBot, type ManagementDeps } from './management-deps.js';

export const deliveryListQuery = z.strictObject({
  state: z.enum(DELIVERY_STATES).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
  before: z.iso.datetime({ offset: true }).optional(),
});

export const replaySchema = z.strictObject({ since: z.iso.datetime({ offset: true }) });

/**
 * Replays a failed delivery (POST /api/v1/deliveries/{id}/retry and the console's Replay button):
 * 404 for an unknown id (or one of another bot than `botId`, when given), 409 unless it failed.
 */
export async function retryFailedDelivery(deps: ManagementDeps, id: string, botId?: string): Promise<DeliveryRecord> {
  const found = UUID_PATTERN.test(id) ? await findDelivery(deps.db, id.toLowerCase()) : null;
  const delivery = found && (botId === undefined || found.botId === botId) ? found : null;
  if (!delivery) throw new DomainError('not_found', 'unknown_delivery', 'no delivery with this id', { param: 'id' });
  if (delivery.state !== 'failed')
    throw new DomainError(
      'conflict',
      'not_failed',
      `the delivery is ${delivery.state}; only a failed one is replayed`,
      {
        param: 'id',
      },
    );
  const [replayed] = await replayDeliveries(deps.db, { id: delivery.id });
  const fresh = replayed ? await findDelivery(deps.db, replayed) : null;
  if (fresh) await deps.replayDelivery(fresh);
  return delivery;
}

export function registerDeliveryRoutes(router: Router, deps: ManagementDeps): void {
  router.get('/bots/:botId/deliveries', async (ctx) => {
    const query = parseBody(deliveryListQuery, { ...ctx.query });
    const deliveries = await listDeliveries(deps.db, currentBot(ctx).id, {
      limit: query.limit,
      ...(query.state ? { state: query.state } : {}),
      ...(query.before ? { before: new Date(query.before) } : {}),
    });
    ctx.body = { deliveries };
  });

  router.post('/deliveries/:id/retry', async (ctx) => {
    const delivery = await retryFailedDelivery(deps, ctx.params.id!);
    ctx.status = 202;
    ctx.body = { ok: true, id: delivery.id, messageId: delivery.messageId };
  });

  router.post('/bots/:botId/deliveries/retry', async (ctx) => {
    const input = parseBody(replaySchema, await readJsonBody(ctx));
    const ids = await replayDeliveries(deps.db, { botId: currentBot(ctx).id, since: new Date(input.since) });
    for (const id of ids) {
      const fresh = await findDelivery(deps.db, id);
      if (fresh) await deps.replayDelivery(fresh);
    }
    ctx.status = 202;
    ctx.body = { ok: true, replayed: ids.length };
  });
}
