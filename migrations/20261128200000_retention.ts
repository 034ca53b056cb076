import type { Knex } from 'knex';

// Indexes that find the rows retention deletes (src/db/retention.ts) without scanning the tables,
// each small: what is finished, or a timestamp. Built CONCURRENTLY, so an upgrade never blocks the
// writes of these busy tables while it builds; that cannot run in a transaction.
export const config = { transaction: false };

const INDEXES: Array<[name: string, definition: string]> = [
  // Finished deliveries by when they finished (pending ones are never deleted: not in the index).
  ['deliveries_finished_idx', `deliveries (finished_at) WHERE state IN ('succeeded', 'failed')`],
  ['dialog_messages_created_idx', 'dialog_messages (created_at)'],
  // Clicks nobody claimed, by age (a claim takes a click out of the index).
  ['clicks_unclaimed_idx', 'clicks (created_at) WHERE claimed_chat_id IS NULL'],
  ['click_waiting_updates_created_idx', 'click_waiting_updates (created_at)'],
  ['conversion_events_created_idx', 'conversion_events (created_at)'],
];

export async function up(knex: Knex): Promise<void> {
  for (const [name, definition] of INDEXES) {
    // A build interrupted earlier leaves an invalid index of that name: built again.
    const found = await knex.raw<{ rows: Array<{ valid: boolean }> }>(
      `SELECT i.indisvalid AS valid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
       WHERE c.relname = ? AND pg_table_is_visible(c.oid)`,
      [name],
    );
    if (found.rows[0]?.valid === false) await knex.raw(`DROP INDEX CONCURRENTLY IF EXISTS ${name}`);
    await knex.raw(`CREATE INDEX CONCURRENTLY IF NOT EXISTS ${name} ON ${definition}`);
  }
}

export async function down(knex: Knex): Promise<void> {
  for (const [name] of [...INDEXES].reverse()) await knex.raw(`DROP INDEX CONCURRENTLY IF EXISTS ${name}`);
}
