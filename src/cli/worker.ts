import { createDb } from '../db/connection.js';
import { loadConfigOrExit, onShutdown, processLogger } from './process.js';
import { startWorkerTier } from '../workers/worker-tier.js';

const config = loadConfigOrExit();
const log = processLogger(config, 'worker');
const db = createDb(config.databaseUrl, {}, log);
const workers = await startWorkerTier(config, db, log);
onShutdown(log, async () => {
  await workers.close();
  await db.destroy();
});
