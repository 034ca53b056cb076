import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';

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

export async function insertEndpoint(db: Knex, botId: string, name: string, rateLimit: number | null): Promise<PostbackEndpoint> {
  const [row] = await db<EndpointRow>('postback_endpoints')
    .insert({ id: randomUUID(), bot_id: botId, name, rate_limit: rateLimit })
    .returning('*');
  return toEndpoint(row as EndpointRow);
}

export async function listEndpoints(db: Knex, botId: string): Promise<PostbackEndpoint[]> {
  const rows = await db<EndpointRow>('postback_endpoints').where({ bot_id: botId }).orderBy('created_at');
  return rows.map(toEndpoint);
}

export async function findEndpoint(db: Knex, id: string): Promise<PostbackEndpoint | null> {
  const row = await db<EndpointRow>('postback_endpoints').where({ id }).first();
  return row ? toEndpoint(row) : null;
}

/** Returns whether an endpoint of that bot was deleted. */
export async function deleteEndpoint(db: Knex, botId: string, id: string): Promise<boolean> {
  return (await db('postback_endpoints').where({ id, bot_id: botId }).delete()) > 0;
}
