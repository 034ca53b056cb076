import { createDb, ensureDatabase } from '../db/connection.js';
import { migrateLatest } from '../db/migrate.js';
import { announceAdminKey, loadConfigOrExit, onShutdown, processLogger } from './process.js';
import { startWebTier } from '../http/server.js';
import { startWorkerTier } from '../workers/worker-tier.js';

/** Everything in one process: migrations, the web tier and the workers. */
const config = loadConfigOrExit();
const log = processLogger(config, 'all');
announceAdminKey(config, log);
if (await ensureDatabase(config.databaseUrl)) log.info('database created');
const db = createDb(config.databaseUrl, {}, log);
await migrateLatest(db);
const workers = await startWorkerTier(config, db, log);
const web = await startWebTier(config, db, log);
onShutdown(log, async () => {
  await web.close();
  await workers.close();
  await db.destroy();
});
