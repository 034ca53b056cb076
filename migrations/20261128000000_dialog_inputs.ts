import type { Knex } from 'knex';

// Every input of a dialog that can move its script (a postback's step or status, a Telegram update,
// a delay firing) is journaled here with its acceptance order (`seq`, drawn from one Redis counter
// for all of them) before it is handled, and handled one at a time in that order. A run's decision
// (its effects) is recorded on the input before it is carried out, and `effects_done` says how far
// it got, so a retry resumes instead of repeating.
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('dialog_inputs', (t) => {
    t.uuid('bot_id').notNullable();
    t.bigInteger('chat_id').notNullable();
    t.bigInteger('seq').notNullable();
    t.text('kind').notNullable();
    t.jsonb('payload').notNullable();
    // Recognises a repeat of the same input: `tg:<token key>:<update_id>`, `timer:<seq that set it>`.
    t.text('dedupe_key');
    // pending → acting (decided, effects recorded) → done | superseded; or dead after too many failures.
    t.text('state').notNullable().defaultTo('pending');
    t.jsonb('effects');
    t.integer('effects_done').notNullable().defaultTo(0);
    t.integer('attempts').notNullable().defaultTo(0);
    t.text('last_error');
    t.text('note');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.primary(['bot_id', 'chat_id', 'seq']);
    t.foreign(['bot_id', 'chat_id']).references(['bot_id', 'chat_id']).inTable('dialogs').onDelete('CASCADE');
  });
  await knex.raw(
    'CREATE UNIQUE INDEX dialog_inputs_dedupe_idx ON dialog_inputs (bot_id, dedupe_key) WHERE dedupe_key IS NOT NULL',
  );
  // The open inputs of a dialog (few at any time): read in order by the drain, looked for by the sweeper.
  await knex.raw(
    `CREATE INDEX dialog_inputs_open_idx ON dialog_inputs (bot_id, chat_id, seq) WHERE state IN ('pending', 'acting')`,
  );
  await knex.raw('CREATE INDEX dialog_inputs_seq_idx ON dialog_inputs (seq)');
  await knex.raw(`CREATE INDEX dialog_inputs_dead_idx ON dialog_inputs (bot_id, updated_at) WHERE state = 'dead'`);
  await knex.raw('CREATE INDEX dialog_inputs_prune_idx ON dialog_inputs (updated_at)');

  await knex.schema.alterTable('dialogs', (t) => {
    // Bumped by every write, so that a script run's write can tell that a postback came in between.
    t.bigInteger('version').notNullable().defaultTo(0);
    // The pending delay: when it fires and what it continues with (source of truth; the queue's
    // delayed job is only its alarm).
    t.timestamp('timer_at', { useTz: true });
    t.jsonb('timer');
    // Why the dialog was set to manual by flowpost itself (e.g. a step removed by a script upload).
    t.text('manual_reason');
  });
  await knex.raw('CREATE INDEX dialogs_timer_idx ON dialogs (timer_at) WHERE timer_at IS NOT NULL');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX dialogs_timer_idx');
  await knex.schema.alterTable('dialogs', (t) => {
    t.dropColumns('version', 'timer_at', 'timer', 'manual_reason');
  });
  await knex.schema.dropTable('dialog_inputs');
}
