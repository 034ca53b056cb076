import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { createDb } from '../../src/db/connection.js';
import { migrateLatest } from '../../src/db/migrate.js';

const SERVER_URL = process.env.TEST_DATABASE_SERVER ?? 'postgres://postgres@127.0.0.1:5432';

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
  }
}

/** One database for this test run, created and migrated here and dropped at the end. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const name = `flowpost_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: `${SERVER_URL}/postgres` });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();

  const databaseUrl = `${SERVER_URL}/${name}`;
  const db = createDb(databaseUrl, { max: 1 });
  await migrateLatest(db);
  await db.destroy();
  project.provide('databaseUrl', databaseUrl);

  return async () => {
    const client = new pg.Client({ connectionString: `${SERVER_URL}/postgres` });
    await client.connect();
    await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await client.end();
  };
}
