import { createDb, databaseTarget } from '../db/connection.js';
import { announceAdminKey, loadConfigOrExit, onShutdown, processLogger } from './process.js';
import { startWebTier } from '../http/server.js';

const config = loadConfigOrExit();
const log = processLogger(config, 'web');
announceAdminKey(config, log);
const db = createDb(databaseTarget(config), {}, log);
const web = await startWebTier(config, db, log);
onShutdown(log, async () => {
  await web.close();
  await db.destroy();
});
