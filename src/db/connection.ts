import knexFactory, { type Knex } from 'knex';
import pg from 'pg';
import type { Logger } from '../config/log.js';

export type Db = Knex;

// BIGINT (chat ids) and NUMERIC come back as strings by default; chat ids fit a double (|x| ≤ 2^53−1).
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));

export function createDb(databaseUrl: string, pool: { min?: number; max?: number } = {}, log?: Logger): Db {
  const forward = (level: 'warn' | 'error' | 'debug') => (message: unknown) =>
    log?.[level]({ knex: String(message) }, 'knex');
  return knexFactory({
    log: { warn: forward('warn'), error: forward('debug'), debug: forward('debug'), deprecate: forward('warn') },
    client: 'pg',
    connection: { connectionString: databaseUrl, connectionTimeoutMillis: 5_000 },
    pool: { min: pool.min ?? 0, max: pool.max ?? 10, acquireTimeoutMillis: 10_000 },
    acquireConnectionTimeout: 10_000,
  });
}

/** Creates the database named in the URL when it does not exist yet (first start on a fresh machine). */
export async function ensureDatabase(databaseUrl: string): Promise<boolean> {
  const url = new URL(databaseUrl);
  const name = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (!name) return false;
  url.pathname = '/postgres';
  const client = new pg.Client({ connectionString: url.toString(), connectionTimeoutMillis: 5_000 });
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (found.rowCount) return false;
    try {
      await client.query(`CREATE DATABASE "${name.replace(/"/g, '""')}"`);
    } catch (error) {
      // Created meanwhile by another process: 42P04, or 23505 when both CREATEs raced in the catalog.
      const code = (error as { code?: string }).code;
      if (code !== '42P04' && code !== '23505') throw error;
      return false;
    }
    return true;
  } finally {
    await client.end();
  }
}

/** Resolves once Postgres answers a trivial statement (the readiness probe). */
export async function pingDatabase(db: Knex): Promise<void> {
  await db.raw('SELECT 1');
}

/** True for errors that mean "Postgres is not reachable right now", as opposed to a bad statement. */
export function isDatabaseUnavailable(error: unknown): boolean {
  const e = error as { code?: string; message?: string } | null;
  if (!e) return false;
  const code = e.code ?? '';
  if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH'].includes(code))
    return true;
  if (code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03' || code === '53300')
    return true;
  const message = e.message ?? '';
  return /Connection terminated|Knex: Timeout acquiring a connection|timeout exceeded when trying to connect|Client has encountered a connection error|connection is closed/i.test(
    message,
  );
}
