import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  // dialog_messages becomes the dialog's transcript: who wrote each line, and Telegram's id for it.
  // Rows so far, and rows a worker of the previous release writes during a rolling deploy, are
  // users' incoming messages: hence the default.
  await knex.schema.alterTable('dialog_messages', (t) => {
    t.text('sender').notNullable().defaultTo('user');
    t.bigInteger('telegram_message_id');
  });
  await knex.raw(`UPDATE dialog_messages SET sender = 'script' WHERE direction <> 'in'`);
  await knex.raw(
    `ALTER TABLE dialog_messages ADD CONSTRAINT dialog_messages_sender_check CHECK (sender IN ('user', 'script', 'operator'))`,
  );
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE dialog_messages DROP CONSTRAINT IF EXISTS dialog_messages_sender_check`);
  await knex.schema.alterTable('dialog_messages', (t) => {
    t.dropColumns('sender', 'telegram_message_id');
  });
}
