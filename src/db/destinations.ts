import type { Knex } from 'knex';
import type { Destination, DestinationEvent } from '../domain/tracker/destinations.js';

export interface DestinationRecord extends Destination {
  botId: string;
  name: string;
  createdAt: Date;
  updatedAt: Date;
}

interface DestinationRow {
  id: string;
  bot_id: string;
  name: string;
  on: DestinationEvent[];
  campaigns: string[] | null;
  statuses: string[] | null;
  method: Destination['method'];
  url: string;
  headers: Record<string, string>;
  body: string | null;
  created_at: Date;
  updated_at: Date;
}

function toRecord(row: DestinationRow): DestinationRecord {
  return {
    id: row.id,
    botId: row.bot_id,
    name: row.name,
    on: row.on,
    campaigns: row.campaigns,
    statuses: row.statuses,
    method: row.method,
    url: row.url,
    headers: row.headers,
    body: row.body,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export type DestinationFields = Omit<DestinationRecord, 'id' | 'botId' | 'createdAt' | 'updatedAt'>;

function columns(fields: Partial<DestinationFields>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (fields.name !== undefined) out.name = fields.name;
  if (fields.on !== undefined) out.on = fields.on;
  if (fields.campaigns !== undefined) out.campaigns = fields.campaigns;
  if (fields.statuses !== undefined) out.statuses = fields.statuses;
  if (fields.method !== undefined) out.method = fields.method;
  if (fields.url !== undefined) out.url = fields.url;
  if (fields.headers !== undefined) out.headers = JSON.stringify(fields.headers);
  if (fields.body !== undefined) out.body = fields.body;
  return out;
}

export async function insertDestination(
  db: Knex,
  botId: string,
  fields: DestinationFields,
): Promise<DestinationRecord> {
  const [row] = await db('destinations')
    .insert({ bot_id: botId, ...columns(fields) })
    .returning<DestinationRow[]>('*');
  return toRecord(row!);
}

export async function listDestinations(db: Knex, botId: string): Promise<DestinationRecord[]> {
  const rows = await db('destinations').where({ bot_id: botId }).orderBy('created_at').select<DestinationRow[]>('*');
  return rows.map(toRecord);
}

export async function findDestination(db: Knex, botId: string, id: string): Promise<DestinationRecord | null> {
  const row = await db('destinations').where({ bot_id: botId, id }).first<DestinationRow | undefined>('*');
  return row ? toRecord(row) : null;
}

export async function updateDestination(
  db: Knex,
  botId: string,
  id: string,
  fields: Partial<DestinationFields>,
): Promise<DestinationRecord | null> {
  const [row] = await db('destinations')
    .where({ bot_id: botId, id })
    .update({ ...columns(fields), updated_at: db.fn.now() })
    .returning<DestinationRow[]>('*');
  return row ? toRecord(row) : null;
}

export async function deleteDestination(db: Knex, botId: string, id: string): Promise<boolean> {
  return (await db('destinations').where({ bot_id: botId, id }).delete()) > 0;
}
