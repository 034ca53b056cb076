import type { Knex } from 'knex';
import * as spine from '../../migrations/20261122000000_spine.js';
import * as scriptRuns from '../../migrations/20261122010000_script_runs.js';
import * as deliveryChains from '../../migrations/20261122020000_delivery_chains.js';
import * as pendingDeliveriesIndex from '../../migrations/20261122030000_pending_deliveries_index.js';
import * as deliveryBatchJobs from '../../migrations/20261122040000_delivery_batch_jobs.js';
import * as dialogInputs from '../../migrations/20261128000000_dialog_inputs.js';
import * as tracker from '../../migrations/20261128100000_tracker.js';
import * as retention from '../../migrations/20261128200000_retention.js';
import * as transcript from '../../migrations/20261128300000_transcript.js';
import * as dialogListing from '../../migrations/20261128400000_dialog_listing.js';
import * as broadcasts from '../../migrations/20261128500000_broadcasts.js';

interface Migration {
  up(knex: Knex): Promise<void>;
  down(knex: Knex): Promise<void>;
  /** `transaction: false`: the migration runs outside a transaction (CREATE INDEX CONCURRENTLY). */
  config?: { transaction?: boolean };
}

/** Every migration, in order. Listed here so the same code runs from TypeScript sources and from dist/. */
const MIGRATIONS: Array<[string, Migration]> = [
  ['20261122000000_spine', spine],
  ['20261122010000_script_runs', scriptRuns],
  ['20261122020000_delivery_chains', deliveryChains],
  ['20261122030000_pending_deliveries_index', pendingDeliveriesIndex],
  ['20261122040000_delivery_batch_jobs', deliveryBatchJobs],
  ['20261128000000_dialog_inputs', dialogInputs],
  ['20261128100000_tracker', tracker],
  ['20261128200000_retention', retention],
  ['20261128300000_transcript', transcript],
  ['20261128400000_dialog_listing', dialogListing],
  ['20261128500000_broadcasts', broadcasts],
];

const source: Knex.MigrationSource<[string, Migration]> = {
  getMigrations: () => Promise.resolve(MIGRATIONS),
  getMigrationName: ([name]) => name,
  getMigration: ([, migration]) => Promise.resolve(migration),
};

/** Brings the schema up to date; returns the names of the migrations that ran. */
export async function migrateLatest(db: Knex): Promise<string[]> {
  const [, names] = (await db.migrate.latest({ migrationSource: source })) as [number, string[]];
  return names;
}
