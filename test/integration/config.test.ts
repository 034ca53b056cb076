import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/env.js';
import { ensureDatabase } from '../../src/db/connection.js';
import { dropPrefix, REDIS_URL, uniquePrefix } from '../support/harness.js';
import { databaseUrl } from '../support/database.js';
import { freePort } from '../support/free-port.js';

const ROOT = new URL('../..', import.meta.url).pathname;

/** The Postgres server of the test database, without a database name. */
function serverUrl(database: string): string {
  const url = new URL(databaseUrl());
  url.pathname = `/${database}`;
  return url.toString();
}

function expectConfigError(env: Record<string, string>, variable: string): ConfigError {
  let thrown: unknown;
  try {
    loadConfig(env);
  } catch (error) {
    thrown = error;
  }
  expect(thrown, `${JSON.stringify(env)} should be refused`).toBeInstanceOf(ConfigError);
  const error = thrown as ConfigError;
  expect(error.variable).toBe(variable);
  expect(error.message).toContain(variable);
  return error;
}

describe('loadConfig', () => {
  it('serves a local machine by default', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      nodeEnv: 'development',
      port: 3000,
      databaseUrl: 'postgres://postgres@127.0.0.1:5432/flowpost',
      redisUrl: 'redis://127.0.0.1:6379',
      publicUrl: 'http://localhost:3000',
      telegramApiRoot: 'https://api.telegram.org',
      outboundAllowCidrs: [],
      outboundRetrySchedule: [0, 5, 300, 1800, 7200, 18_000, 36_000, 36_000],
      workerConcurrency: 64,
      logLevel: 'info',
      queuePrefix: 'flowpost',
    });
    expect(config.outboundTimeoutMs).toBeGreaterThan(0);
    expect(config.postbackRateLimit).toBeGreaterThan(0);
  });

  it('reads every variable, and counts empty strings as unset', () => {
    const config = loadConfig({
      NODE_ENV: 'production',
      PORT: '8080',
      DATABASE_URL: 'postgresql://u:p@db.internal:5433/app',
      REDIS_URL: 'rediss://:secret@cache.internal:6380',
      PUBLIC_URL: 'https://bots.example.com/',
      ADMIN_API_KEY: 'a-long-enough-admin-key',
      TELEGRAM_API_ROOT: 'http://127.0.0.1:8081/',
      OUTBOUND_ALLOW_CIDRS: '10.0.0.0/8, 192.168.1.0/24,fd00::/8',
      OUTBOUND_RETRY_SCHEDULE: '0, 10,60',
      WORKER_CONCURRENCY: '8',
      LOG_LEVEL: 'debug',
      QUEUE_PREFIX: 'fp_prod',
    });
    expect(config).toMatchObject({
      nodeEnv: 'production',
      port: 8080,
      databaseUrl: 'postgresql://u:p@db.internal:5433/app',
      redisUrl: 'rediss://:secret@cache.internal:6380',
      publicUrl: 'https://bots.example.com',
      adminApiKey: 'a-long-enough-admin-key',
      adminApiKeyGenerated: false,
      telegramApiRoot: 'http://127.0.0.1:8081',
      outboundAllowCidrs: ['10.0.0.0/8', '192.168.1.0/24', 'fd00::/8'],
      outboundRetrySchedule: [0, 10, 60],
      workerConcurrency: 8,
      logLevel: 'debug',
      queuePrefix: 'fp_prod',
    });
    const blank = loadConfig({ PORT: '', DATABASE_URL: '', LOG_LEVEL: '', OUTBOUND_RETRY_SCHEDULE: '' });
    expect(blank.port).toBe(3000);
    expect(blank.databaseUrl).toBe('postgres://postgres@127.0.0.1:5432/flowpost');
    expect(blank.logLevel).toBe('info');
    expect(blank.outboundRetrySchedule[0]).toBe(0);
    // The default public URL follows the port.
    expect(loadConfig({ PORT: '4000' }).publicUrl).toBe('http://localhost:4000');
  });

  it.each([
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['PORT', '-1'],
    ['PORT', '80.5'],
    ['DATABASE_URL', 'mysql://x'],
    ['DATABASE_URL', 'not a url'],
    ['REDIS_URL', 'nope'],
    ['REDIS_URL', 'http://127.0.0.1:6379'],
    ['LOG_LEVEL', 'loud'],
    ['WORKER_CONCURRENCY', '0'],
    ['WORKER_CONCURRENCY', 'many'],
    ['WORKER_CONCURRENCY', '2.5'],
    ['OUTBOUND_RETRY_SCHEDULE', 'a,b'],
    ['OUTBOUND_RETRY_SCHEDULE', '5,-1'],
    ['OUTBOUND_RETRY_SCHEDULE', '5,,300'],
    ['OUTBOUND_RETRY_SCHEDULE', '0,5,'],
    ['OUTBOUND_RETRY_SCHEDULE', '999999999'],
    ['OUTBOUND_ALLOW_CIDRS', '10.0.0.0'],
    ['OUTBOUND_ALLOW_CIDRS', '10.0.0.0/8,localhost'],
    ['OUTBOUND_ALLOW_CIDRS', '10.0.0.0/33'],
    ['OUTBOUND_ALLOW_CIDRS', '999.1.1.1/8'],
    ['OUTBOUND_ALLOW_CIDRS', '::1/129'],
    ['PUBLIC_URL', 'ftp://x'],
    ['PUBLIC_URL', 'bots.example.com'],
    ['TELEGRAM_API_ROOT', 'api.telegram.org'],
    ['ADMIN_API_KEY', 'short'],
    ['QUEUE_PREFIX', 'has:colon'],
  ])('%s=%s throws a ConfigError naming that variable', (variable, value) => {
    expectConfigError({ ADMIN_API_KEY: 'a-long-enough-admin-key', [variable]: value }, variable);
  });

  it('keeps finished rows for the documented days, each table set on its own, whole days of at least 1', () => {
    expect(loadConfig({}).retention).toEqual({
      deliveriesDays: 30,
      messagesDays: 90,
      unclaimedClicksDays: 30,
      deadInputsDays: 30,
      handledInputsDays: 2,
      conversionEventsDays: 90,
    });
    const set = loadConfig({ RETENTION_HANDLED_INPUTS_DAYS: '7', RETENTION_CONVERSION_EVENTS_DAYS: '365' });
    expect(set.retention).toMatchObject({ handledInputsDays: 7, conversionEventsDays: 365, deliveriesDays: 30 });
    for (const variable of ['RETENTION_HANDLED_INPUTS_DAYS', 'RETENTION_CONVERSION_EVENTS_DAYS']) {
      for (const value of ['0', '1.5', 'week']) expectConfigError({ [variable]: value }, variable);
    }
  });

  it('names the bad variable even when the others are fine', () => {
    const error = expectConfigError(
      { PORT: '3000', LOG_LEVEL: 'loud', REDIS_URL: 'redis://127.0.0.1:6379' },
      'LOG_LEVEL',
    );
    expect(error.message).toMatch(/info/); // says what is allowed
  });

  it('requires ADMIN_API_KEY in production, and generates one in development', () => {
    expectConfigError({ NODE_ENV: 'production' }, 'ADMIN_API_KEY');
    expectConfigError({ NODE_ENV: 'production', ADMIN_API_KEY: '' }, 'ADMIN_API_KEY');

    const first = loadConfig({ NODE_ENV: 'development' });
    const second = loadConfig({});
    expect(first.adminApiKeyGenerated).toBe(true);
    expect(second.adminApiKeyGenerated).toBe(true);
    expect(first.adminApiKey.length).toBeGreaterThanOrEqual(16);
    expect(first.adminApiKey).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(first.adminApiKey).not.toBe(second.adminApiKey);

    const given = loadConfig({ NODE_ENV: 'development', ADMIN_API_KEY: 'my-own-admin-key-123' });
    expect(given.adminApiKey).toBe('my-own-admin-key-123');
    expect(given.adminApiKeyGenerated).toBe(false);
  });
});

// ---------------------------------------------------------------------------------------------
// Processes

/** Variables this project reads; the children get none of the test runner's own. */
const PROJECT_VARIABLES = [
  'NODE_ENV',
  'PORT',
  'DATABASE_URL',
  'REDIS_URL',
  'PUBLIC_URL',
  'ADMIN_API_KEY',
  'TELEGRAM_API_ROOT',
  'OUTBOUND_ALLOW_CIDRS',
  'OUTBOUND_RETRY_SCHEDULE',
  'OUTBOUND_TIMEOUT_MS',
  'WORKER_CONCURRENCY',
  'LOG_LEVEL',
  'QUEUE_PREFIX',
  'POSTBACK_RATE_LIMIT',
];

function childEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const base: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!PROJECT_VARIABLES.includes(name) && !/^(TELEGRAM_|OUTBOUND_|VITEST)/.test(name)) base[name] = value;
  }
  return { ...base, ...env };
}

interface Child {
  pid: number;
  stdout: string;
  stderr: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with the first stdout JSON line for which `match` is true. */
  logLine(match: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Kills the whole process group, for clean-up. */
  killAll(): void;
}

const children: Child[] = [];

/** Runs `node --import tsx <script>` in its own process group (straight to node: no npx process between). */
function start(script: string, env: Record<string, string>): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', script], {
    cwd: ROOT,
    env: childEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const child: Child = {
    pid: proc.pid!,
    stdout: '',
    stderr: '',
    exited: new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal }))),
    logLine: (match, timeoutMs = 60_000) =>
      new Promise((resolve, reject) => {
        const scan = (): boolean => {
          for (const text of child.stdout.split('\n')) {
            let line: Record<string, unknown>;
            try {
              line = JSON.parse(text) as Record<string, unknown>;
            } catch {
              continue;
            }
            if (match(line)) {
              cleanup();
              resolve(line);
              return true;
            }
          }
          return false;
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(
            new Error(
              `no matching log line within ${timeoutMs} ms; stdout:\n${child.stdout}\nstderr:\n${child.stderr}`,
            ),
          );
        }, timeoutMs);
        const onData = () => void scan();
        const onExit = () => {
          if (!scan()) {
            cleanup();
            reject(new Error(`exited before the log line; stdout:\n${child.stdout}\nstderr:\n${child.stderr}`));
          }
        };
        const cleanup = () => {
          clearTimeout(timer);
          proc.stdout.off('data', onData);
          proc.off('exit', onExit);
        };
        proc.stdout.on('data', onData);
        proc.on('exit', onExit);
        scan();
      }),
    killAll: () => {
      try {
        process.kill(-proc.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    },
  };
  proc.stdout.on('data', (chunk: Buffer) => {
    child.stdout += chunk.toString('utf8');
  });
  proc.stderr.on('data', (chunk: Buffer) => {
    child.stderr += chunk.toString('utf8');
  });
  children.push(child);
  return child;
}

async function exitOf(
  child: Child,
  timeoutMs = 60_000,
): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`still running after ${timeoutMs} ms; stderr:\n${child.stderr}`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([child.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function withAdmin<T>(run: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: serverUrl('postgres') });
  await client.connect();
  try {
    return await run(client);
  } finally {
    await client.end();
  }
}

async function databaseExists(name: string): Promise<boolean> {
  return withAdmin(
    async (client) => ((await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount ?? 0) > 0,
  );
}

const createdDatabases: string[] = [];
const createdPrefixes: string[] = [];

afterAll(async () => {
  for (const child of children) child.killAll();
  for (const name of createdDatabases) {
    await withAdmin((client) => client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
  }
  for (const prefix of createdPrefixes) await dropPrefix(prefix);
});

function uniqueDatabase(): string {
  const name = `flowpost_cfg_${randomBytes(5).toString('hex')}`;
  createdDatabases.push(name);
  return name;
}

// Each test starts processes, databases and prefixes of its own, and mostly waits on them: they run at once.
// A process's start (loading TypeScript through tsx) takes seconds on a machine busy with the other test files.
describe.concurrent('processes', { timeout: 120_000 }, () => {
  it('web refuses PORT=abc: exits non-zero naming PORT', async () => {
    const child = start('src/cli/web.ts', { PORT: 'abc', ADMIN_API_KEY: 'a-long-enough-admin-key' });
    const { code } = await exitOf(child);
    expect(code).not.toBe(0);
    expect(code).not.toBeNull();
    expect(child.stderr).toMatch(/invalid configuration: PORT/);
  });

  it('web refuses NODE_ENV=production without ADMIN_API_KEY: exits non-zero naming ADMIN_API_KEY', async () => {
    const child = start('src/cli/web.ts', { NODE_ENV: 'production', PORT: String(await freePort('0.0.0.0')) });
    const { code } = await exitOf(child);
    expect(code).not.toBe(0);
    expect(code).not.toBeNull();
    expect(child.stderr).toMatch(/invalid configuration: ADMIN_API_KEY/);
  });

  it('ensureDatabase creates a missing database, and returns false once it exists', async () => {
    const name = uniqueDatabase();
    expect(await databaseExists(name)).toBe(false);
    expect(await ensureDatabase(serverUrl(name))).toBe(true);
    expect(await databaseExists(name)).toBe(true);
    expect(await ensureDatabase(serverUrl(name))).toBe(false);
    // Concurrent first starts (web and worker dynos) do not fail each other.
    const other = uniqueDatabase();
    const results = await Promise.all([
      ensureDatabase(serverUrl(other)),
      ensureDatabase(serverUrl(other)),
      ensureDatabase(serverUrl(other)),
    ]);
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(await databaseExists(other)).toBe(true);
  });

  it('migrate creates a brand-new database and its schema, and is idempotent', async () => {
    const name = uniqueDatabase();
    const env = { DATABASE_URL: serverUrl(name), LOG_LEVEL: 'info' };
    const first = start('src/cli/migrate.ts', env);
    expect((await exitOf(first)).code).toBe(0);
    expect(await databaseExists(name)).toBe(true);
    const client = new pg.Client({ connectionString: serverUrl(name) });
    await client.connect();
    try {
      const tables = await client.query(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name",
      );
      const names = tables.rows.map((row: { table_name: string }) => row.table_name);
      for (const table of ['bots', 'bot_fields', 'postback_endpoints', 'script_steps', 'dialogs'])
        expect(names).toContain(table);
      const columns = await client.query(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'dialogs'",
      );
      expect(columns.rows.map((row: { column_name: string }) => row.column_name)).toEqual(
        expect.arrayContaining(['bot_id', 'chat_id', 'fields', 'tracker', 'tags', 'step_id', 'status']),
      );
    } finally {
      await client.end();
    }
    expect(first.stdout).toMatch(/database created/);

    const second = start('src/cli/migrate.ts', env);
    expect((await exitOf(second)).code).toBe(0);
    expect(second.stdout).not.toMatch(/database created/);
    expect(second.stdout).toMatch(/schema up to date/);
  });

  it('web without ADMIN_API_KEY in development logs a generated key that works, and exits 0 on SIGTERM', async () => {
    const port = await freePort('0.0.0.0');
    const prefix = uniquePrefix();
    createdPrefixes.push(prefix);
    const child = start('src/cli/web.ts', {
      NODE_ENV: 'development',
      PORT: String(port),
      DATABASE_URL: databaseUrl(),
      REDIS_URL,
      QUEUE_PREFIX: prefix,
      LOG_LEVEL: 'info',
    });
    // The generated key is in the message text (an `adminApiKey` field would be redacted).
    const announced = await child.logLine((line) => /generated development key \S+/.test(String(line.msg)));
    const key = /generated development key (\S+)/.exec(String(announced.msg))![1]!;
    expect(key.length).toBeGreaterThanOrEqual(16);
    expect(announced.level).toBe(40); // a warning
    const listening = await child.logLine((line) => line.msg === 'web tier listening');
    expect(listening.port).toBe(port);

    const bot = `http://127.0.0.1:${port}/api/v1/bots/${randomUUID()}`;
    const withKey = await fetch(bot, { headers: { authorization: `Bearer ${key}` } });
    expect(withKey.status).toBe(404);
    expect(((await withKey.json()) as { error: { code: string } }).error.code).toBe('unknown_bot');
    const withoutKey = await fetch(bot);
    expect(withoutKey.status).toBe(401);
    await withoutKey.arrayBuffer();
    const otherKey = await fetch(bot, { headers: { authorization: 'Bearer test-admin-key-0123456789' } });
    expect(otherKey.status).toBe(401);
    await otherKey.arrayBuffer();

    // SIGTERM to the web process, which logged its own pid.
    const webPid = listening.pid as number;
    expect(webPid).toBe(child.pid);
    process.kill(webPid, 'SIGTERM');
    const { code, signal } = await exitOf(child);
    expect(signal).toBeNull();
    expect(code).toBe(0);
    expect(child.stdout).toMatch(/"msg":"shutting down"/);
    await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
  });
});
