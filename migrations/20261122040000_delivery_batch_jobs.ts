import type { Knex } from 'knex';

// A delivery queued in a batch job names that job, so that the sweeper can tell a delivery still
// waiting in its batch from one that was left without a job.
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('deliveries', (t) => {
    t.text('queued_in');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('deliveries', (t) => {
    t.dropColumn('queued_in');
  });
}
