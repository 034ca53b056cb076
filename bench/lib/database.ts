import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createDb, type Db } from '../../src/db/connection.js';
import { migrateLatest } from '../../src/db/migrate.js';

const SERVER_URL = process.env.BENCH_DATABASE_SERVER ?? 'postgres://postgres@127.0.0.1:5432';

export interface BenchDatabase {
  url: string;
  db: Db;
  drop(): Promise<void>;
}

/** A fresh, migrated database for one bench run. */
export async function createBenchDatabase(): Promise<BenchDatabase> {
  const name = `flowpost_bench_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: `${SERVER_URL}/postgres` });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = `${SERVER_URL}/${name}`;
  const db = createDb(url);
  await migrateLatest(db);
  return {
    url,
    db,
    drop: async () => {
      await db.destroy();
      const client = new pg.Client({ connectionString: `${SERVER_URL}/postgres` });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await client.end();
    },
  };
}
