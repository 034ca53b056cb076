import type { Knex } from 'knex';

// A replayed delivery starts a fresh chain of attempts (same webhook-id); attempts say which chain.
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('deliveries', (t) => {
    t.integer('chain').notNullable().defaultTo(1);
  });
  await knex.schema.alterTable('delivery_attempts', (t) => {
    t.integer('chain').notNullable().defaultTo(1);
    t.text('error_kind');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('delivery_attempts', (t) => {
    t.dropColumns('chain', 'error_kind');
  });
  await knex.schema.alterTable('deliveries', (t) => {
    t.dropColumn('chain');
  });
}
