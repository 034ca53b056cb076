import { execFile } from 'node:child_process';
import { chmod, chown, mkdtemp, readFile, readdirSync, rm, writeFile } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from './free-port.js';

/**
 * A PostgreSQL cluster of a test's own (initdb in a temp dir, on a free port): a test may stop,
 * kill or reconfigure it without touching the machine's shared server at 5432. Postgres refuses to
 * run as root, so the cluster belongs to the `postgres` OS user when the tests run as root.
 */
export interface PrivatePostgres {
  /** The maintenance database's URL: postgres://postgres@127.0.0.1:PORT/postgres */
  url: string;
  port: number;
  dataDir: string;
  /** The self-signed certificate the server presents, when started with `ssl: true`. */
  certificatePath?: string;
  databaseUrl(name: string): string;
  /** Creates a database and returns its URL. */
  createDatabase(name: string): Promise<string>;
  /** Runs statements in the maintenance database (as the superuser). */
  query(sql: string, database?: string): Promise<pg.QueryResult>;
  /** A fast shutdown (open sessions are ended); `start` brings it back on the same port. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** SIGKILL to the postmaster: what a crashed machine looks like. `start` recovers it. */
  kill(): Promise<void>;
  /** Stops the server and removes its data directory. */
  destroy(): Promise<void>;
}

export interface PrivatePostgresOptions {
  /** ssl=on with a self-signed certificate made for this cluster. */
  ssl?: boolean;
  /** Extra postgresql.conf settings. */
  config?: Record<string, string>;
  /** pg_hba.conf lines in place of the default (trust for every local and 127.0.0.1 connection). */
  hba?: string[];
}

const run = promisify(execFile);
const asRoot = process.getuid?.() === 0;

function binDir(): string {
  const versions = readdirSync('/usr/lib/postgresql')
    .map(Number)
    .filter(Number.isFinite)
    .sort((a, b) => b - a);
  if (versions.length === 0) throw new Error('no PostgreSQL server binaries under /usr/lib/postgresql');
  return `/usr/lib/postgresql/${versions[0]}/bin`;
}

/** Runs a server binary as the `postgres` user when we are root. */
async function asPostgres(binary: string, args: string[]): Promise<string> {
  const command = join(binDir(), binary);
  const { stdout } = asRoot
    ? await run('runuser', ['-u', 'postgres', '--', command, ...args], { cwd: tmpdir() })
    : await run(command, args, { cwd: tmpdir() });
  return stdout;
}

async function giveToPostgres(path: string): Promise<void> {
  if (!asRoot) return;
  const { stdout } = await run('id', ['-u', 'postgres']);
  const { stdout: gid } = await run('id', ['-g', 'postgres']);
  await promisify(chown)(path, Number(stdout.trim()), Number(gid.trim()));
}

export async function startPrivatePostgres(options: PrivatePostgresOptions = {}): Promise<PrivatePostgres> {
  const dataDir = await promisify(mkdtemp)(join(tmpdir(), 'flowpost-pg-'));
  await giveToPostgres(dataDir);
  await promisify(chmod)(dataDir, 0o700);
  await asPostgres('initdb', ['-D', dataDir, '-U', 'postgres', '-A', 'trust', '--no-sync', '-E', 'UTF8']);

  const port = await freePort();
  const settings: Record<string, string> = {
    port: String(port),
    listen_addresses: "'127.0.0.1'",
    unix_socket_directories: `'${dataDir}'`,
    fsync: 'off',
    max_connections: '100',
    ...options.config,
  };
  let certificatePath: string | undefined;
  if (options.ssl) {
    certificatePath = join(dataDir, 'server.crt');
    const keyPath = join(dataDir, 'server.key');
    await run('openssl', [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '2',
      '-subj',
      '/CN=localhost',
      '-keyout',
      keyPath,
      '-out',
      certificatePath,
    ]);
    await promisify(chmod)(keyPath, 0o600);
    await giveToPostgres(keyPath);
    await giveToPostgres(certificatePath);
    settings.ssl = 'on';
    settings.ssl_cert_file = `'${certificatePath}'`;
    settings.ssl_key_file = `'${keyPath}'`;
  }
  const conf = join(dataDir, 'postgresql.conf');
  const current = await promisify(readFile)(conf, 'utf8');
  const extra = Object.entries(settings)
    .map(([key, value]) => `${key} = ${value}`)
    .join('\n');
  await promisify(writeFile)(conf, `${current}\n${extra}\n`);
  const hba = options.hba ?? ['local all all trust', 'host all all 127.0.0.1/32 trust'];
  await promisify(writeFile)(join(dataDir, 'pg_hba.conf'), `${hba.join('\n')}\n`);

  const start = async () => {
    await asPostgres('pg_ctl', ['-D', dataDir, '-l', join(dataDir, 'server.log'), '-w', '-t', '30', 'start']);
  };
  const stop = async () => {
    await asPostgres('pg_ctl', ['-D', dataDir, '-m', 'fast', '-w', '-t', '30', 'stop']);
  };
  await start();

  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const databaseUrl = (name: string) => `postgres://postgres@127.0.0.1:${port}/${encodeURIComponent(name)}`;
  const query = async (sql: string, database = 'postgres') => {
    const client = new pg.Client({ connectionString: databaseUrl(database), ssl: false });
    await client.connect();
    try {
      return await client.query(sql);
    } finally {
      await client.end();
    }
  };

  return {
    url,
    port,
    dataDir,
    ...(certificatePath ? { certificatePath } : {}),
    databaseUrl,
    query,
    createDatabase: async (name) => {
      await query(`CREATE DATABASE "${name.replace(/"/g, '""')}"`);
      return databaseUrl(name);
    },
    start,
    stop,
    kill: async () => {
      const pid = Number((await promisify(readFile)(join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0]);
      process.kill(pid, 'SIGKILL');
      // The postmaster's children notice it is gone and exit; wait until the port is free.
      for (let i = 0; i < 100; i++) {
        try {
          process.kill(pid, 0);
        } catch {
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
    destroy: async () => {
      await stop().catch(() => undefined);
      await promisify(rm)(dataDir, { recursive: true, force: true });
    },
  };
}
