import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import type { FieldDefinition, FieldType } from '../domain/field-types.js';

export interface BotRecord {
  id: string;
  name: string;
  timezone: string;
  telegramToken: string | null;
  telegramInfo: Record<string, unknown> | null;
  createdAt: Date;
  updatedAt: Date;
}

interface BotRow {
  id: string;
  name: string;
  timezone: string;
  telegram_token: string | null;
  telegram_info: Record<string, unknown> | null;
  created_at: Date;
  updated_at: Date;
}

function toBot(row: BotRow): BotRecord {
  return {
    id: row.id,
    name: row.name,
    timezone: row.timezone,
    telegramToken: row.telegram_token,
    telegramInfo: row.telegram_info,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export interface BotTelegram {
  token: string;
  info: object;
  /** Telegram sends it with every webhook call. */
  secret: string;
}

export async function insertBot(
  db: Knex,
  bot: { name: string; timezone: string; telegram: BotTelegram | null },
): Promise<BotRecord> {
  const [row] = await db<BotRow>('bots')
    .insert({
      id: randomUUID(),
      name: bot.name,
      timezone: bot.timezone,
      telegram_token: bot.telegram?.token ?? null,
      telegram_info: bot.telegram ? (JSON.stringify(bot.telegram.info) as never) : null,
      telegram_secret: bot.telegram?.secret ?? null,
    } as never)
    .returning('*');
  return toBot(row as BotRow);
}

export async function updateBot(
  db: Knex,
  id: string,
  changes: { name?: string; timezone?: string; telegram?: BotTelegram },
): Promise<BotRecord> {
  const update: Record<string, unknown> = { updated_at: db.fn.now() };
  if (changes.name !== undefined) update.name = changes.name;
  if (changes.timezone !== undefined) update.timezone = changes.timezone;
  if (changes.telegram) {
    update.telegram_token = changes.telegram.token;
    update.telegram_info = JSON.stringify(changes.telegram.info);
    update.telegram_secret = changes.telegram.secret;
  }
  const [row] = await db('bots').where({ id }).update(update).returning('*');
  return toBot(row as BotRow);
}

export async function findBot(db: Knex, id: string): Promise<BotRecord | null> {
  const row = await db<BotRow>('bots').where({ id }).first();
  return row ? toBot(row) : null;
}

interface FieldRow {
  key: string;
  name: string;
  type: FieldType;
  options: string[] | null;
}

export async function upsertField(db: Knex, botId: string, field: FieldDefinition): Promise<void> {
  await db('bot_fields')
    .insert({ bot_id: botId, key: field.key, name: field.name, type: field.type, options: field.options === null ? null : JSON.stringify(field.options) })
    .onConflict(['bot_id', 'key'])
    .merge({ name: field.name, type: field.type, options: field.options === null ? null : JSON.stringify(field.options), updated_at: db.fn.now() });
}

export async function listFields(db: Knex, botId: string): Promise<FieldDefinition[]> {
  const rows: FieldRow[] = await db('bot_fields').where({ bot_id: botId }).orderBy('key').select('key', 'name', 'type', 'options');
  return rows.map((row) => ({ key: row.key, name: row.name, type: row.type, options: row.options }));
}
