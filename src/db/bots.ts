import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import type { FieldDefinition, FieldType } from '../domain/field-types.js';
import { retryingDeadlocks } from './deadlock-retry.js';

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
  const [row] = await db<BotRow>('bots').where({ id }).update(update).returning('*');
  return toBot(row as BotRow);
}

export async function findBot(db: Knex, id: string): Promise<BotRecord | null> {
  const row = await db<BotRow>('bots').where({ id }).first();
  return row ? toBot(row) : null;
}

/** Every bot, oldest first. */
export async function listBots(db: Knex): Promise<BotRecord[]> {
  const rows: BotRow[] = await db<BotRow>('bots').orderBy([{ column: 'created_at' }, { column: 'id' }]);
  return rows.map(toBot);
}

/**
 * Deletes a bot and, by the foreign keys' ON DELETE CASCADE, everything of it (dialogs with their
 * inputs and messages, steps, fields, postback URLs, campaigns, clicks, conversions, destinations,
 * deliveries with their attempts). One transaction: a large bot holds its rows' locks until done.
 * A worker writing one of its dialogs locks the dialog's row, then the bot's (a row naming the bot),
 * the opposite order of the cascade's: when Postgres breaks that deadlock by failing the deletion,
 * the deletion runs again (and removes what the worker wrote).
 * Returns the ids of its postback URLs (for the caches to forget), or null when there was no such bot.
 */
export async function deleteBot(db: Knex, id: string): Promise<{ endpointIds: string[] } | null> {
  return retryingDeadlocks(() =>
    db.transaction(async (trx) => {
      await lockBot(trx, id);
      const endpoints: Array<{ id: string }> = await trx('postback_endpoints').where({ bot_id: id }).select('id');
      const deleted = await trx('bots').where({ id }).delete();
      return deleted > 0 ? { endpointIds: endpoints.map((row) => row.id) } : null;
    }),
  );
}

/** Sets (or with null, removes) the bot's Standard Webhooks signing secret for its Send Webhook calls. */
export async function setSigningSecret(db: Knex, id: string, secret: string | null): Promise<void> {
  await db('bots').where({ id }).update({ signing_secret: secret, updated_at: db.fn.now() });
}

/** What a Telegram webhook call is checked against: the bot's secret and token (null when the bot does not exist). */
export async function findTelegramWebhookSecret(
  db: Knex,
  id: string,
): Promise<{ secret: string | null; token: string | null } | null> {
  const row: { telegram_secret: string | null; telegram_token: string | null } | undefined = await db('bots')
    .where({ id })
    .first('telegram_secret', 'telegram_token');
  return row ? { secret: row.telegram_secret ?? null, token: row.telegram_token ?? null } : null;
}

/** Every bot's id (the web tier answers an id not among them without a query). */
export async function listBotIds(db: Knex): Promise<string[]> {
  const rows: Array<{ id: string }> = await db('bots').select('id');
  return rows.map((row) => row.id);
}

/** Every bot with a Telegram token, with the getMe answer stored beside it. */
export async function listTelegramBots(db: Knex): Promise<Array<{ id: string; token: string; info: unknown }>> {
  const rows: Array<{ id: string; telegram_token: string; telegram_info: unknown }> = await db('bots')
    .whereNotNull('telegram_token')
    .select('id', 'telegram_token', 'telegram_info');
  return rows.map((row) => ({ id: row.id, token: row.telegram_token, info: row.telegram_info }));
}

/** Holds the bot's row until the transaction ends, so that its script is replaced by one writer at a time. */
export async function lockBot(trx: Knex.Transaction, id: string): Promise<void> {
  await trx('bots').where({ id }).forUpdate().first('id');
}

interface FieldRow {
  key: string;
  name: string;
  type: FieldType;
  options: string[] | null;
}

export async function upsertField(db: Knex, botId: string, field: FieldDefinition): Promise<void> {
  await db('bot_fields')
    .insert({
      bot_id: botId,
      key: field.key,
      name: field.name,
      type: field.type,
      options: field.options === null ? null : JSON.stringify(field.options),
    })
    .onConflict(['bot_id', 'key'])
    .merge({
      name: field.name,
      type: field.type,
      options: field.options === null ? null : JSON.stringify(field.options),
      updated_at: db.fn.now(),
    });
}

export async function listFields(db: Knex, botId: string): Promise<FieldDefinition[]> {
  const rows: FieldRow[] = await db('bot_fields')
    .where({ bot_id: botId })
    .orderBy('key')
    .select('key', 'name', 'type', 'options');
  return rows.map((row) => ({ key: row.key, name: row.name, type: row.type, options: row.options }));
}
