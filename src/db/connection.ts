import knexFactory, { type Knex } from 'knex';
import pg from 'pg';
import type { Logger } from '../config/log.js';
import { postgresConnection, type DatabaseSsl, type PostgresConnection } from './postgres-ssl.js';

export type Db = Knex;

// BIGINT (chat ids) and NUMERIC come back as strings by default; chat ids fit a double (|x| ≤ 2^53−1).
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));

/**
 * Where Postgres is: its URL, and DATABASE_SSL (unset: the URL's sslmode decides, see
 * postgresConnection). A bare URL follows its sslmode.
 */
export type DatabaseTarget = string | { url: string; ssl: DatabaseSsl | undefined };

/** The target the configuration names (DATABASE_URL, DATABASE_SSL). */
export function databaseTarget(config: { databaseUrl: string; databaseSsl: DatabaseSsl | undefined }): DatabaseTarget {
  return { url: config.databaseUrl, ssl: config.databaseSsl };
}

function connectionFor(target: DatabaseTarget): PostgresConnection {
  return typeof target === 'string' ? postgresConnection(target) : postgresConnection(target.url, target.ssl);
}

export function createDb(target: DatabaseTarget, pool: { min?: number; max?: number } = {}, log?: Logger): Db {
  const forward = (level: 'warn' | 'error' | 'debug') => (message: unknown) =>
    log?.[level]({ knex: String(message) }, 'knex');
  return knexFactory({
    log: { warn: forward('warn'), error: forward('debug'), debug: forward('debug'), deprecate: forward('warn') },
    client: 'pg',
    connection: { ...connectionFor(target), connectionTimeoutMillis: 5_000 },
    pool: { min: pool.min ?? 0, max: pool.max ?? 10, acquireTimeoutMillis: 10_000 },
    acquireConnectionTimeout: 10_000,
  });
}

const INVALID_CATALOG_NAME = '3D000';

function errorCode(error: unknown): string | undefined {
  return (error as { code?: string } | null)?.code;
}

/** A refused certificate names the setting that decides, instead of only the TLS library's words. */
function explainTlsFailure(error: unknown): unknown {
  const code = errorCode(error) ?? '';
  const message = error instanceof Error ? error.message : String(error);
  const certificate =
    /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS_CERT_ALTNAME_INVALID/.test(code) || /certificate/i.test(message);
  const noSsl = /does not support SSL/i.test(message);
  if (!certificate && !noSsl) return error;
  const advice = certificate
    ? "Postgres' certificate was refused; set DATABASE_SSL=no-verify to encrypt without checking it (managed Postgres such as Heroku's), or name its CA with sslrootcert= in DATABASE_URL"
    : 'Postgres does not accept SSL; set DATABASE_SSL=false or remove sslmode from DATABASE_URL';
  return new Error(`${advice} (${message})`, { cause: error });
}

async function connectClient(connection: PostgresConnection): Promise<pg.Client> {
  const client = new pg.Client({ ...connection, connectionTimeoutMillis: 5_000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => undefined);
    throw error;
  }
  return client;
}

/**
 * Creates the database named in the URL when it does not exist yet (first start on a fresh
 * machine); true when it was created. The database itself is tried first: where users may not
 * reach the `postgres` maintenance database or create databases (Heroku), an existing database is
 * used without a word, and a missing one that cannot be created is reported once in `log` (the
 * migrations then fail with their own error).
 */
export async function ensureDatabase(target: DatabaseTarget, log?: Logger): Promise<boolean> {
  const connection = connectionFor(target);
  const url = new URL(connection.connectionString);
  const name = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (!name) return false;
  try {
    await (await connectClient(connection)).end();
    return false;
  } catch (error) {
    if (errorCode(error) !== INVALID_CATALOG_NAME) throw explainTlsFailure(error);
  }
  url.pathname = '/postgres';
  let client: pg.Client;
  try {
    client = await connectClient({ ...connection, connectionString: url.toString() });
  } catch (error) {
    log?.warn(
      { err: error, database: name },
      `database "${name}" does not exist and cannot be created: the maintenance database "postgres" is not reachable (${String((error as Error).message)})`,
    );
    return false;
  }
  try {
    await client.query(`CREATE DATABASE "${name.replace(/"/g, '""')}"`);
    return true;
  } catch (error) {
    // Created meanwhile by another process: 42P04, or 23505 when both CREATEs raced in the catalog.
    const code = errorCode(error);
    if (code === '42P04' || code === '23505') return false;
    log?.warn(
      { err: error, database: name },
      `database "${name}" does not exist and cannot be created: CREATE DATABASE was refused (${String((error as Error).message)})`,
    );
    return false;
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
