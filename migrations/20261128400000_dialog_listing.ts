import type { Knex } from 'knex';

// The management API's dialog listing: a bot's dialogs newest activity first (paged by
// (updated_at, chat_id)), and the tag filter. Built CONCURRENTLY: dialogs may be large, and
// writes to them go on meanwhile.
export const config = { transaction: false };

export async function up(knex: Knex): Promise<void> {
  await knex.raw(
    'CREATE INDEX CONCURRENTLY IF NOT EXISTS dialogs_bot_updated_idx ON dialogs (bot_id, updated_at DESC, chat_id DESC)',
  );
  await knex.raw('CREATE INDEX CONCURRENTLY IF NOT EXISTS dialogs_tags_idx ON dialogs USING gin (tags)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX CONCURRENTLY IF EXISTS dialogs_tags_idx');
  await knex.raw('DROP INDEX CONCURRENTLY IF EXISTS dialogs_bot_updated_idx');
}
