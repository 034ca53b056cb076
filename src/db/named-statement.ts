import type { Knex } from 'knex';

/**
 * A hot statement run as a named prepared statement on a connection of the knex pool: Postgres
 * parses and plans its text once per connection, and the driver sends only the values after that.
 * Knex has no way to name a statement, so this borrows the pool's connection for the one query.
 */
export interface NamedStatement {
  name: string;
  /** SQL with `$1`, `$2` … placeholders. */
  text: string;
}

interface PgConnection {
  query(config: { name: string; text: string; values: unknown[] }): Promise<{ rows: unknown[] }>;
}

/** The part of knex's (untyped) client that lends out a pool connection. */
interface ConnectionPool {
  acquireConnection(): Promise<PgConnection>;
  releaseConnection(connection: PgConnection): Promise<void>;
}

export async function runNamed<Row>(db: Knex, statement: NamedStatement, values: unknown[]): Promise<Row[]> {
  const pool = db.client as ConnectionPool;
  const connection = await pool.acquireConnection();
  try {
    const result = await connection.query({ name: statement.name, text: statement.text, values });
    return result.rows as Row[];
  } finally {
    await pool.releaseConnection(connection);
  }
}
