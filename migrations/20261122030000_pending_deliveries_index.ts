import type { Knex } from 'knex';

// Finds deliveries left pending without a job (see the outbound sweeper) without a table scan.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`CREATE INDEX deliveries_pending_idx ON deliveries (updated_at) WHERE state = 'pending'`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX deliveries_pending_idx');
}
