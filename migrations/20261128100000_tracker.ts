import type { Knex } from 'knex';

// The affiliate loop (API.md §5): campaigns make clicks; a /start claims a click for a dialog, whose
// tracker fields it fills; every click id a dialog ever claimed resolves to it.
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('campaigns', (t) => {
    // Short ([A-Za-z0-9], 10 characters): it travels in `k_<id>` start payloads (64 at most).
    t.text('id').primary();
    t.uuid('bot_id').notNullable().references('id').inTable('bots').onDelete('CASCADE');
    t.text('name').notNullable();
    // The query parameters kept as tracker fields, and the fixed tracker fields.
    t.jsonb('params').notNullable().defaultTo('[]');
    t.jsonb('fields').notNullable().defaultTo('{}');
    // The key of the step a dialog started from this campaign begins at (null: the script's start).
    t.text('start_step');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    // A deleted campaign answers 404 and makes no clicks; its clicks and their stats stay.
    t.timestamp('deleted_at', { useTz: true });
    t.index(['bot_id', 'created_at']);
  });

  await knex.schema.createTable('clicks', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('bot_id').notNullable().references('id').inTable('bots').onDelete('CASCADE');
    t.text('campaign_id').references('id').inTable('campaigns').onDelete('SET NULL');
    // What travels in `c_<token>` start payloads.
    t.text('token').notNullable().unique();
    // The tracker's click id (or one made here): what networks call back with.
    t.text('clickid').notNullable();
    // The tracker fields a dialog gets when it claims the click (`clickid` among them).
    t.jsonb('fields').notNullable();
    // What ad platforms want back (ip, user agent, fbc, …): kept server-side, never in a payload.
    t.jsonb('ad').notNullable().defaultTo('{}');
    // A click forked from another (its link was forwarded to a second chat).
    t.uuid('parent_id').references('id').inTable('clicks').onDelete('SET NULL');
    t.bigInteger('claimed_chat_id');
    // The order of the /start that claimed it: a retry of that input finds the same click.
    t.bigInteger('claimed_seq');
    t.timestamp('claimed_at', { useTz: true });
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.unique(['bot_id', 'clickid']);
    t.index(['campaign_id', 'created_at']);
  });
  await knex.raw(
    'CREATE INDEX clicks_claimed_idx ON clicks (bot_id, claimed_chat_id) WHERE claimed_chat_id IS NOT NULL',
  );
  // For the foreign keys' ON DELETE: without them, deleting a bot scans clicks once per click.
  await knex.raw('CREATE INDEX clicks_parent_idx ON clicks (parent_id) WHERE parent_id IS NOT NULL');

  // Postback values for a click nobody has claimed yet: applied, in their order, when it is claimed.
  await knex.schema.createTable('click_waiting_updates', (t) => {
    t.uuid('click_id').notNullable().references('id').inTable('clicks').onDelete('CASCADE');
    t.bigInteger('seq').notNullable();
    t.jsonb('job').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.primary(['click_id', 'seq']);
  });

  // A network's conversion: (bot, clickid, event, tid) is one conversion, its status moving
  // lead → sale | rejected, sale → rejected.
  await knex.schema.createTable('conversions', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('bot_id').notNullable().references('id').inTable('bots').onDelete('CASCADE');
    t.text('clickid').notNullable();
    t.text('event').notNullable();
    t.text('tid').notNullable();
    t.text('status').notNullable();
    t.decimal('payout', 20, 8);
    t.text('currency');
    t.bigInteger('chat_id');
    t.text('campaign_id');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.unique(['bot_id', 'clickid', 'event', 'tid']);
    t.index(['bot_id', 'chat_id']);
    t.index(['campaign_id', 'created_at']);
  });
  // Every conversion call as it was handled (new, moved, duplicate, ignored, with the reason), once
  // per accepted order: a retried job finds what its first try decided.
  await knex.schema.createTable('conversion_events', (t) => {
    t.bigIncrements('id');
    t.uuid('bot_id').notNullable().references('id').inTable('bots').onDelete('CASCADE');
    t.uuid('conversion_id').references('id').inTable('conversions').onDelete('CASCADE');
    t.bigInteger('seq');
    t.text('clickid').notNullable();
    t.text('event').notNullable();
    t.text('tid').notNullable();
    t.text('status').notNullable();
    t.decimal('payout', 20, 8);
    t.text('currency');
    t.text('outcome').notNullable();
    t.text('reason');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw(
    'CREATE UNIQUE INDEX conversion_events_seq_idx ON conversion_events (bot_id, seq) WHERE seq IS NOT NULL',
  );
  await knex.raw('CREATE INDEX conversion_events_conversion_idx ON conversion_events (conversion_id)');

  await knex.schema.alterTable('dialogs', (t) => {
    t.uuid('first_click_id');
    t.uuid('latest_click_id');
  });
  // flowpost's own postbacks onwards (to trackers and ad platforms), sent as Send Webhook deliveries.
  await knex.schema.createTable('destinations', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('bot_id').notNullable().references('id').inTable('bots').onDelete('CASCADE');
    t.text('name').notNullable();
    // Which happenings it hears: 'click.claimed', 'conversion'.
    t.specificType('on', 'text[]').notNullable();
    // Only these campaigns' / statuses' (null: all).
    t.specificType('campaigns', 'text[]');
    t.specificType('statuses', 'text[]');
    t.text('method').notNullable();
    t.text('url').notNullable();
    t.jsonb('headers').notNullable().defaultTo('{}');
    t.text('body');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['bot_id']);
  });

  // The script's `onConversion` rules (the steps themselves are rows of script_steps).
  await knex.schema.alterTable('bots', (t) => {
    t.jsonb('script_on_conversion');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('bots', (t) => {
    t.dropColumn('script_on_conversion');
  });
  await knex.schema.alterTable('dialogs', (t) => {
    t.dropColumns('first_click_id', 'latest_click_id');
  });
  await knex.schema.dropTable('destinations');
  await knex.schema.dropTable('conversion_events');
  await knex.schema.dropTable('conversions');
  await knex.schema.dropTable('click_waiting_updates');
  await knex.schema.dropTable('clicks');
  await knex.schema.dropTable('campaigns');
}
