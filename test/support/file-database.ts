import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { useDatabase } from './database.js';

// Runs before each integration test file: a copy of the migrated template, for this file alone
// (global-setup.ts drops the copies at the end of the run).
const template = inject('databaseTemplate');
const name = `${template}_${randomBytes(4).toString('hex')}`;
const admin = new pg.Client({ connectionString: `${inject('databaseServer')}/postgres` });
await admin.connect();
try {
  await admin.query(`CREATE DATABASE ${name} TEMPLATE ${template}`);
} finally {
  await admin.end();
}
useDatabase(`${inject('databaseServer')}/${name}`);
