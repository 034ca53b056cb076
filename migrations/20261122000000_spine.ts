import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('bots', (t) => {
    t.uuid('id').primary();
    t.text('name').notNullable();
    t.text('timezone').notNullable().defaultTo('UTC');
    t.text('telegram_token');
    t.jsonb('telegram_info');
    t.text('script_start');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });

  await knex.schema.createTable('bot_fields', (t) => {
    t.uuid('bot_id').notNullable().references('bots.id').onDelete('CASCADE');
    t.text('key').notNullable();
    t.text('name').notNullable();
    t.text('type').notNullable();
    t.jsonb('options');
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.primary(['bot_id', 'key']);
  });

  // Postback endpoints: each id is one unguessable URL of one bot.
  await knex.schema.createTable('postback_endpoints', (t) => {
    t.uuid('id').primary();
    t.uuid('bot_id').notNullable().references('bots.id').onDelete('CASCADE');
    t.text('name').notNullable();
    t.integer('rate_limit');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['bot_id']);
  });

  await knex.schema.createTable('script_steps', (t) => {
    t.uuid('id').primary();
    t.uuid('bot_id').notNullable().references('bots.id').onDelete('CASCADE');
    t.text('key').notNullable();
    t.integer('position').notNullable();
    t.jsonb('definition').notNullable();
    t.unique(['bot_id', 'key']);
  });

  // One dialog per (bot, Telegram chat). `seqs` keeps, per written key, the acceptance order of the
  // update that wrote it last ("status", "step", "f:<field>", "t:<tracker>", "g:<tag>"), which makes
  // applying an update idempotent and independent of the order workers finish in.
  await knex.schema.createTable('dialogs', (t) => {
    t.uuid('bot_id').notNullable().references('bots.id').onDelete('CASCADE');
    t.bigInteger('chat_id').notNullable();
    t.text('username');
    t.text('name');
    t.text('status').notNullable().defaultTo('auto');
    t.uuid('step_id');
    t.jsonb('fields').notNullable().defaultTo('{}');
    t.jsonb('tracker').notNullable().defaultTo('{}');
    t.specificType('tags', 'text[]').notNullable().defaultTo('{}');
    t.jsonb('seqs').notNullable().defaultTo('{}');
    t.bigInteger('last_seq').notNullable().defaultTo(0);
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('started_at', { useTz: true });
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.primary(['bot_id', 'chat_id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('dialogs');
  await knex.schema.dropTable('script_steps');
  await knex.schema.dropTable('postback_endpoints');
  await knex.schema.dropTable('bot_fields');
  await knex.schema.dropTable('bots');
}
