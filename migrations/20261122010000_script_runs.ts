import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('bots', (t) => {
    // Secret Telegram sends in X-Telegram-Bot-Api-Secret-Token with each webhook call.
    t.text('telegram_secret');
    // Signs outbound webhooks (Standard Webhooks `whsec_…`), when set.
    t.text('signing_secret');
  });

  await knex.schema.alterTable('dialogs', (t) => {
    t.text('first_name');
    t.text('last_name');
    // Bumped whenever the script takes a new path; a delayed continuation of an older run is stale.
    t.bigInteger('run_version').notNullable().defaultTo(0);
    // The last Telegram update applied to this dialog (updates are deduplicated by it).
    t.bigInteger('last_update_id').notNullable().defaultTo(0);
  });

  // What users wrote while an operator had the dialog (status manual), and other incoming messages.
  await knex.schema.createTable('dialog_messages', (t) => {
    t.bigIncrements('id');
    t.uuid('bot_id').notNullable();
    t.bigInteger('chat_id').notNullable();
    t.text('direction').notNullable();
    t.text('text');
    t.jsonb('payload');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.foreign(['bot_id', 'chat_id']).references(['bot_id', 'chat_id']).inTable('dialogs').onDelete('CASCADE');
    t.index(['bot_id', 'chat_id', 'id']);
  });

  // Outbound webhook calls made by send_webhook steps, and every attempt at each.
  await knex.schema.createTable('deliveries', (t) => {
    t.uuid('id').primary();
    t.uuid('bot_id').notNullable().references('bots.id').onDelete('CASCADE');
    t.bigInteger('chat_id');
    t.uuid('step_id');
    // Sent as `webhook-id` on every attempt, so receivers can deduplicate.
    t.text('message_id').notNullable();
    t.text('method').notNullable();
    t.text('url').notNullable();
    t.jsonb('headers').notNullable().defaultTo('{}');
    t.text('body');
    t.text('state').notNullable().defaultTo('pending');
    t.integer('attempt_count').notNullable().defaultTo(0);
    t.text('last_error');
    t.timestamp('next_attempt_at', { useTz: true });
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('finished_at', { useTz: true });
    t.index(['bot_id', 'state', 'created_at']);
  });

  await knex.schema.createTable('delivery_attempts', (t) => {
    t.bigIncrements('id');
    t.uuid('delivery_id').notNullable().references('deliveries.id').onDelete('CASCADE');
    t.integer('attempt').notNullable();
    t.timestamp('started_at', { useTz: true }).notNullable();
    t.integer('duration_ms').notNullable();
    t.integer('status');
    t.text('error');
    t.text('response_excerpt');
    t.index(['delivery_id', 'attempt']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('delivery_attempts');
  await knex.schema.dropTable('deliveries');
  await knex.schema.dropTable('dialog_messages');
  await knex.schema.alterTable('dialogs', (t) => {
    t.dropColumns('first_name', 'last_name', 'run_version', 'last_update_id');
  });
  await knex.schema.alterTable('bots', (t) => {
    t.dropColumns('telegram_secret', 'signing_secret');
  });
}
