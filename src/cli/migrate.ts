import { createDb, databaseTarget, ensureDatabase } from '../db/connection.js';
import { migrateLatest } from '../db/migrate.js';
import { loadConfigOrExit, processLogger } from './process.js';

/** The release phase: create the database if needed and bring its schema up to date. */
const config = loadConfigOrExit();
const log = processLogger(config, 'release');
if (await ensureDatabase(databaseTarget(config), log)) log.info('database created');
const db = createDb(databaseTarget(config), { max: 2 }, log);
const ran = await migrateLatest(db);
log.info({ migrations: ran }, ran.length ? 'migrations applied' : 'schema up to date');
await db.destroy();
