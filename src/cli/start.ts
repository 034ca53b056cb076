import { createDb, databaseTarget, ensureDatabase } from '../db/connection.js';
import { migrateLatest } from '../db/migrate.js';
import { announceAdminKey, loadConfigOrExit, onShutdown, processLogger } from './process.js';
import { startWebTier } from '../http/server.js';
import { startWorkerTier } from '../workers/worker-tier.js';
import { pausedQueues } from '../workers/pause-on-outage.js';

/** Everything in one process: migrations, the web tier and the workers. */
const config = loadConfigOrExit();
const log = processLogger(config, 'all');
announceAdminKey(config, log);
if (await ensureDatabase(databaseTarget(config), log)) log.info('database created');
const db = createDb(databaseTarget(config), {}, log);
await migrateLatest(db);
const workers = await startWorkerTier(config, db, log);
// /readyz of this process also answers 503 while one of its workers is paused on a Postgres outage.
const web = await startWebTier(config, db, log, { pausedQueues: () => pausedQueues(workers.workers) });
onShutdown(log, async () => {
  await web.close();
  await workers.close();
  await db.destroy();
});
