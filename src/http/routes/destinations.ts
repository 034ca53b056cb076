import { isIP } from 'node:net';
import type Router from '@koa/router';
import { z } from 'zod';
import {
  deleteDestination,
  findDestination,
  insertDestination,
  listDestinations,
  updateDestination,
  type DestinationRecord,
} from '../../db/destinations.js';
import { DomainError } from '../../domain/errors.js';
import { bodyMode } from '../../domain/script/template-sources.js';
import { DESTINATION_EVENTS, DESTINATION_METHODS, destinationTemplate } from '../../domain/tracker/destinations.js';
import { checkAddress } from '../../outbound/delivery/index.js';
import { checkTemplate, type TemplateMode } from '../../templates/index.js';
import { readJsonBody } from '../body.js';
import { parseBody, UUID_PATTERN } from '../validation.js';
import { currentBot, type ManagementDeps } from './management-deps.js';

const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$/;

const fieldsSchema = {
  name: z.string().trim().min(1).max(200),
  on: z.array(z.enum(DESTINATION_EVENTS)).min(1).max(DESTINATION_EVENTS.length),
  campaigns: z
    .array(z.string().regex(/^[A-Za-z0-9]{1,32}$/, 'must be a campaign id'))
    .max(100)
    .nullable(),
  statuses: z
    .array(z.enum(['lead', 'sale', 'rejected']))
    .min(1)
    .max(3)
    .nullable(),
  method: z.enum(DESTINATION_METHODS),
  url: z.string().min(1).max(2048),
  headers: z.record(z.string().regex(HEADER_NAME, 'must be a valid HTTP header name'), z.string().max(4096)),
  body: z.string().max(16_384).nullable(),
};

export const createDestinationSchema = z.strictObject({
  ...fieldsSchema,
  campaigns: fieldsSchema.campaigns.optional(),
  statuses: fieldsSchema.statuses.optional(),
  method: fieldsSchema.method.default('GET'),
  headers: fieldsSchema.headers.optional(),
  body: fieldsSchema.body.optional(),
});

export const patchDestinationSchema = z.strictObject({
  name: fieldsSchema.name.optional(),
  on: fieldsSchema.on.optional(),
  campaigns: fieldsSchema.campaigns.optional(),
  statuses: fieldsSchema.statuses.optional(),
  method: fieldsSchema.method.optional(),
  url: fieldsSchema.url.optional(),
  headers: fieldsSchema.headers.optional(),
  body: fieldsSchema.body.optional(),
});

function refuse(param: string, code: string, message: string): never {
  throw new DomainError('invalid', code, message, { param });
}

function checkDestinationTemplate(param: string, source: string, mode: TemplateMode): void {
  const problem = checkTemplate(destinationTemplate(source), mode);
  if (problem !== null) refuse(param, 'invalid_template', `${param}: ${problem}`);
}

/**
 * The URL must be http(s), and a literal address must be one deliveries may reach (named hosts are
 * checked when each delivery connects, as for Send Webhook steps).
 */
function checkUrl(url: string, allowCidrs: readonly string[]): void {
  checkDestinationTemplate('url', url, 'url');
  const sample = destinationTemplate(url).replace(/\{\{[^}]*\}\}/g, 'x');
  let parsed: URL;
  try {
    parsed = new URL(sample);
  } catch {
    refuse('url', 'invalid_url', 'url must be an absolute http(s) URL');
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    refuse('url', 'invalid_url', 'url must be an http or https URL');
  }
  const host = parsed.hostname.replace(/^\[|\]$/g, '');
  const literal = isIP(host) ? host : host === 'localhost' ? '127.0.0.1' : null;
  if (literal) {
    const check = checkAddress(literal, allowCidrs);
    if (!check.allowed) refuse('url', 'refused_target', `url points at a refused address (${check.reason})`);
  }
}

function json(destination: DestinationRecord) {
  return {
    id: destination.id,
    name: destination.name,
    on: destination.on,
    campaigns: destination.campaigns,
    statuses: destination.statuses,
    method: destination.method,
    url: destination.url,
    headers: destination.headers,
    body: destination.body,
    createdAt: destination.createdAt.toISOString(),
    updatedAt: destination.updatedAt.toISOString(),
  };
}

function checkParts(input: { url?: string; headers?: Record<string, string>; body?: string | null }, allow: string[]) {
  if (input.url !== undefined) checkUrl(input.url, allow);
  for (const [name, value] of Object.entries(input.headers ?? {})) {
    checkDestinationTemplate(`headers.${name}`, value, 'header');
  }
  if (input.body) checkDestinationTemplate('body', input.body, bodyMode(input.body));
}

/** `…/bots/{botId}/destinations` (API.md §5): flowpost's postbacks onwards, to trackers and ad platforms. */
export function registerDestinationRoutes(router: Router, deps: ManagementDeps): void {
  const byId = async (botId: string, id: string) => {
    const found = UUID_PATTERN.test(id) ? await findDestination(deps.db, botId, id.toLowerCase()) : null;
    if (!found)
      throw new DomainError('not_found', 'unknown_destination', 'no destination with this id on this bot', {
        param: 'id',
      });
    return found;
  };

  router.post('/bots/:botId/destinations', async (ctx) => {
    const input = parseBody(createDestinationSchema, await readJsonBody(ctx));
    checkParts(input, deps.outboundAllowCidrs);
    const bot = currentBot(ctx);
    const created = await insertDestination(deps.db, bot.id, {
      name: input.name,
      on: [...new Set(input.on)],
      campaigns: input.campaigns ?? null,
      statuses: input.statuses ?? null,
      method: input.method,
      url: input.url,
      headers: input.headers ?? {},
      body: input.method === 'GET' ? null : (input.body ?? null),
    });
    await deps.invalidate({ kind: 'bot', id: bot.id });
    ctx.status = 201;
    ctx.body = json(created);
  });

  router.get('/bots/:botId/destinations', async (ctx) => {
    ctx.body = { destinations: (await listDestinations(deps.db, currentBot(ctx).id)).map(json) };
  });

  router.get('/bots/:botId/destinations/:id', async (ctx) => {
    ctx.body = json(await byId(currentBot(ctx).id, ctx.params.id!));
  });

  router.patch('/bots/:botId/destinations/:id', async (ctx) => {
    const bot = currentBot(ctx);
    const existing = await byId(bot.id, ctx.params.id!);
    const input = parseBody(patchDestinationSchema, await readJsonBody(ctx));
    checkParts(input, deps.outboundAllowCidrs);
    const { on, ...rest } = input;
    const updated = await updateDestination(deps.db, bot.id, existing.id, {
      ...rest,
      ...(on ? { on: [...new Set(on)] } : {}),
    });
    await deps.invalidate({ kind: 'bot', id: bot.id });
    ctx.body = json(updated!);
  });

  router.delete('/bots/:botId/destinations/:id', async (ctx) => {
    const bot = currentBot(ctx);
    const existing = await byId(bot.id, ctx.params.id!);
    await deleteDestination(deps.db, bot.id, existing.id);
    await deps.invalidate({ kind: 'bot', id: bot.id });
    ctx.status = 204;
  });
}
