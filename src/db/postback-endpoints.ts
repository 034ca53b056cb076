import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import type { BotPostbackView } from '../domain/postback.js';
import { listFields } from './bots.js';
import { listStepRefs } from './script-steps.js';

export interface PostbackEndpoint {
  id: string;
  botId: string;
  name: string;
  rateLimit: number | null;
  createdAt: Date;
}

interface EndpointRow {
  id: string;
  bot_id: string;
  name: string;
  rate_limit: number | null;
  created_at: Date;
}

function toEndpoint(row: EndpointRow): PostbackEndpoint {
  return { id: row.id, botId: row.bot_id, name: row.name, rateLimit: row.rate_limit, createdAt: row.created_at };
}

export async function insertEndpoint(
  db: Knex,
  botId: string,
  name: string,
  rateLimit: number | null,
): Promise<PostbackEndpoint> {
  const [row] = await db<EndpointRow>('postback_endpoints')
    .insert({ id: randomUUID(), bot_id: botId, name, rate_limit: rateLimit })
    .returning('*');
  return toEndpoint(row as EndpointRow);
}

export async function listEndpoints(db: Knex, botId: string): Promise<PostbackEndpoint[]> {
  const rows = await db<EndpointRow>('postback_endpoints').where({ bot_id: botId }).orderBy('created_at');
  return rows.map(toEndpoint);
}

/** Returns whether an endpoint of that bot was deleted. */
export async function deleteEndpoint(db: Knex, botId: string, id: string): Promise<boolean> {
  return (await db('postback_endpoints').where({ id, bot_id: botId }).delete()) > 0;
}

/** Every endpoint's id (the web tier answers an id not among them without a query). */
export async function listEndpointIds(db: Knex): Promise<string[]> {
  const rows: Array<{ id: string }> = await db('postback_endpoints').select('id');
  return rows.map((row) => row.id);
}

/** What the web tier needs to accept a postback for one endpoint. */
export interface EndpointView {
  endpointId: string;
  botId: string;
  rateLimit: number | null;
}

export async function loadEndpointView(db: Knex, endpointId: string): Promise<EndpointView | null> {
  const row = await db<EndpointRow>('postback_endpoints').where({ id: endpointId }).first('id', 'bot_id', 'rate_limit');
  return row ? { endpointId: row.id, botId: row.bot_id, rateLimit: row.rate_limit } : null;
}

export async function loadBotPostbackView(db: Knex, botId: string): Promise<BotPostbackView> {
  const [fields, steps] = await Promise.all([listFields(db, botId), listStepRefs(db, botId)]);
  const stepIdByRef = new Map<string, string>();
  const stepKeyById = new Map<string, string>();
  for (const step of steps) {
    stepIdByRef.set(step.id, step.id);
    stepIdByRef.set(step.key, step.id);
    stepKeyById.set(step.id, step.key);
  }
  return { fields: new Map(fields.map((field) => [field.key, field])), stepIdByRef, stepKeyById };
}
