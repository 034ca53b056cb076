import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { createDb } from '../../src/db/connection.js';
import { migrateLatest } from '../../src/db/migrate.js';

const SERVER_URL = process.env.TEST_DATABASE_SERVER ?? 'postgres://postgres@127.0.0.1:5432';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The Postgres server, without a database name. */
    databaseServer: string;
    /** A migrated database no one connects to: each test file copies it (see file-database.ts). */
    databaseTemplate: string;
  }
}

async function admin<T>(body: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: `${SERVER_URL}/postgres` });
  await client.connect();
  try {
    return await body(client);
  } finally {
    await client.end();
  }
}

/**
 * One migrated template database for this test run, created here; every test file works in a copy
 * of its own (files run in parallel, and each worker tier's sweepers look at its whole database).
 * The template and its copies are dropped at the end.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const name = `flowpost_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  await admin((client) => client.query(`CREATE DATABASE ${name}`));
  const db = createDb(`${SERVER_URL}/${name}`, { max: 1 });
  await migrateLatest(db);
  await db.destroy();
  project.provide('databaseServer', SERVER_URL);
  project.provide('databaseTemplate', name);

  return async () => {
    const copies = await admin((client) =>
      client.query<{ datname: string }>(`SELECT datname FROM pg_database WHERE datname LIKE $1`, [`${name}\\_%`]),
    );
    // One connection per copy: the drops go at once.
    await Promise.all(
      copies.rows.map(({ datname }) =>
        admin((client) => client.query(`DROP DATABASE IF EXISTS ${datname} WITH (FORCE)`)),
      ),
    );
    await admin((client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
  };
}
