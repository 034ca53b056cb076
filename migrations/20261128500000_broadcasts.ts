import type { Knex } from 'knex';

// Broadcasts (API.md §3): a message or a step for every dialog of an audience. The audience is
// fixed when the broadcast starts: its recipients are rows here, each sent at most once (a row
// leaves `pending` once, claimed by the runner just before its send).
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('broadcasts', (t) => {
    t.uuid('id').primary();
    t.uuid('bot_id').notNullable().references('id').inTable('bots').onDelete('CASCADE');
    t.text('state').notNullable();
    // The dialog filters the audience was given (the management API's listing filters).
    t.jsonb('audience').notNullable();
    // {"text","buttons"} or {"stepId","stepKey"}.
    t.jsonb('message').notNullable();
    t.timestamp('start_at', { useTz: true }).notNullable();
    // Set with the snapshot of the audience, when it starts.
    t.integer('planned');
    t.timestamp('started_at', { useTz: true });
    t.timestamp('finished_at', { useTz: true });
    // How many recipients ended how, written when it is done (a finished broadcast's progress is
    // then read without counting its recipients).
    t.jsonb('final_counts');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['bot_id', 'created_at']);
  });
  await knex.raw(
    `ALTER TABLE broadcasts ADD CONSTRAINT broadcasts_state_check
       CHECK (state IN ('scheduled', 'running', 'paused', 'cancelled', 'done'))`,
  );
  // The broadcasts a worker must run (or start): few at a time.
  await knex.raw(`CREATE INDEX broadcasts_active_idx ON broadcasts (start_at) WHERE state IN ('scheduled', 'running')`);

  await knex.schema.createTable('broadcast_recipients', (t) => {
    t.uuid('broadcast_id').notNullable().references('id').inTable('broadcasts').onDelete('CASCADE');
    t.bigInteger('chat_id').notNullable();
    t.text('state').notNullable().defaultTo('pending');
    t.integer('attempts').notNullable().defaultTo(0);
    t.text('error');
    t.bigInteger('telegram_message_id');
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.primary(['broadcast_id', 'chat_id']);
  });
  await knex.raw(
    `ALTER TABLE broadcast_recipients ADD CONSTRAINT broadcast_recipients_state_check
       CHECK (state IN ('pending', 'sending', 'sent', 'blocked', 'failed', 'skipped', 'interrupted'))`,
  );
  // The runner takes the next pending recipients in chat id order.
  await knex.raw(
    `CREATE INDEX broadcast_recipients_open_idx ON broadcast_recipients (broadcast_id, chat_id)
       WHERE state IN ('pending', 'sending')`,
  );
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('broadcast_recipients');
  await knex.schema.dropTable('broadcasts');
}
