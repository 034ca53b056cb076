import { createDb, ensureDatabase } from '../db/connection.js';
import { migrateLatest } from '../db/migrate.js';
import { announceAdminKey, loadConfigOrExit, onShutdown, processLogger } from '../runtime/process.js';
import { startWebTier } from '../runtime/web.js';
import { startWorkerTier } from '../runtime/workers.js';

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
