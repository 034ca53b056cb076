/**
 * Managed platforms (Heroku) serve Redis over TLS with a self-signed certificate
 * (`rediss://…`) and Postgres over SSL with a certificate nobody can verify. Every connection the
 * product makes honours REDIS_TLS_REJECT_UNAUTHORIZED and DATABASE_SSL, and the checks are real:
 * with verification on, the same servers are refused.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import type { Logger } from '../../src/config/log.js';
import { createDb, ensureDatabase, type DatabaseTarget } from '../../src/db/connection.js';
import { createWorkerConnection, type RedisTarget } from '../../src/redis/connection.js';
import { dropPrefix } from '../../src/redis/drop-prefix.js';
import { createBotWithEndpoint, startHarness, uniquePrefix, waitFor, type Harness } from '../support/harness.js';
import { startPrivatePostgres, type PrivatePostgres } from '../support/private-postgres.js';
import { startPrivateRedis, type PrivateRedis } from '../support/private-redis.js';

let redis: PrivateRedis;
beforeAll(async () => {
  redis = await startPrivateRedis({ tls: true });
});
afterAll(async () => {
  await redis?.stop();
});

async function dialogField(h: Harness, botId: string, chatId: number, field: string): Promise<unknown> {
  const res = await h.api('GET', `/api/v1/bots/${botId}/dialogs/${chatId}`);
  return res.status === 200 ? (res.body as { fields: Record<string, unknown> }).fields[field] : undefined;
}

/** The first error a connection reports, or 'ready'. */
async function firstOutcome(target: RedisTarget): Promise<string> {
  const connection = createWorkerConnection(target);
  try {
    return await new Promise<string>((resolve) => {
      connection.once('ready', () => resolve('ready'));
      connection.once('error', (error: Error) => resolve(error.message));
    });
  } finally {
    connection.disconnect();
  }
}

describe('Redis over TLS with a self-signed certificate', () => {
  it('serves TLS only: a plain connection to the port gets nowhere', async () => {
    expect(redis.url).toMatch(/^rediss:\/\//);
    const plain = redis.url.replace(/^rediss:/, 'redis:');
    const connection = createWorkerConnection(plain);
    connection.on('error', () => undefined);
    await expect(
      Promise.race([
        connection.ping(),
        new Promise((_, reject) => setTimeout(() => reject(new Error('no answer')), 1_000)),
      ]),
    ).rejects.toThrow();
    connection.disconnect();
  });

  it('with REDIS_TLS_REJECT_UNAUTHORIZED=false, a postback goes through the web and worker tiers end to end', async () => {
    const h = await startHarness({
      workers: true,
      env: { REDIS_URL: redis.url, REDIS_TLS_REJECT_UNAUTHORIZED: 'false' },
    });
    try {
      expect((await fetch(`${h.baseUrl}/readyz`)).status).toBe(200);
      const { botId, url } = await createBotWithEndpoint(h);
      const res = await fetch(`${url}?chatId=4242&refID=tls-ok`);
      expect(res.status).toBe(202);
      expect(await waitFor(() => dialogField(h, botId, 4242, 'refID'))).toBe('tls-ok');
      // The queue really lives on the TLS server.
      const client = redis.client();
      try {
        expect((await client.keys(`${h.config.queuePrefix}:*`)).length).toBeGreaterThan(0);
      } finally {
        client.disconnect();
      }
    } finally {
      await h.close();
    }
  });

  it('with the default (true), the self-signed certificate is refused: readyz and postbacks answer 503', async () => {
    const h = await startHarness({ env: { REDIS_URL: redis.url } });
    try {
      expect(h.config.redisTlsRejectUnauthorized).toBe(true);
      expect((await fetch(`${h.baseUrl}/readyz`)).status).toBe(503);
      const { url } = await createBotWithEndpoint(h);
      expect((await fetch(`${url}?chatId=4243&refID=refused`)).status).toBe(503);
    } finally {
      // Not h.close(): its cleanup would also be refused by this server, after its retries.
      await h.web?.close();
      await h.db.destroy();
      await h.telegram.close();
    }
  });

  it('closing a web tier mid-connect to Redis leaves no unhandled rejection (it would stop the process)', async () => {
    // A Redis that drops the first connection (a TLS error) and holds the next ones mid-handshake.
    const held: net.Socket[] = [];
    let accepted = 0;
    const server = net.createServer((socket) => {
      socket.on('error', () => undefined);
      if (accepted++ === 0) socket.destroy();
      else held.push(socket);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const port = (server.address() as net.AddressInfo).port;
    const rejections: unknown[] = [];
    const collect = (reason: unknown) => rejections.push(reason);
    process.on('unhandledRejection', collect);
    try {
      const h = await startHarness({ env: { REDIS_URL: `rediss://127.0.0.1:${port}` } });
      await waitFor(async () => held.length > 0, 5_000, 'a connection held mid-handshake');
      // Its queues are waiting for the connection, and have seen it fail once.
      await new Promise((resolve) => setTimeout(resolve, 300));
      // Closing ends the held connection (the server answers its end): its queues' waits for it fail then.
      await h.web?.close();
      await h.db.destroy();
      await h.telegram.close();
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      expect(rejections.map(String)).toEqual([]);
    } finally {
      process.off('unhandledRejection', collect);
      held.forEach((socket) => socket.destroy());
      server.close();
    }
  });

  it('worker connections and prefix cleanup honour the choice too', async () => {
    expect(await firstOutcome({ url: redis.url, tlsRejectUnauthorized: false })).toBe('ready');
    expect(await firstOutcome({ url: redis.url, tlsRejectUnauthorized: true })).toMatch(/self[- ]signed certificate/i);
    // A bare URL checks the certificate.
    expect(await firstOutcome(redis.url)).toMatch(/self[- ]signed certificate/i);

    const prefix = uniquePrefix();
    const client = redis.client();
    try {
      await client.set(`${prefix}:x`, '1');
      await dropPrefix({ url: redis.url, tlsRejectUnauthorized: false }, prefix);
      expect(await client.exists(`${prefix}:x`)).toBe(0);
    } finally {
      client.disconnect();
    }
  });
});

/**
 * A Postgres like Heroku's: SSL with a self-signed certificate, and the application's role `app`
 * may connect only over SSL, may not create databases, and may not connect to `postgres`.
 */
let postgres: PrivatePostgres;
let appUrl: string;
beforeAll(async () => {
  postgres = await startPrivatePostgres({
    ssl: true,
    hba: ['local all all trust', 'hostnossl all postgres 127.0.0.1/32 trust', 'hostssl all all 127.0.0.1/32 trust'],
  });
  await postgres.query('CREATE ROLE app LOGIN NOCREATEDB');
  await postgres.query('CREATE ROLE helper LOGIN NOCREATEDB');
  await postgres.query('CREATE DATABASE app_db OWNER app');
  await postgres.query('REVOKE CONNECT ON DATABASE postgres FROM PUBLIC');
  await postgres.query('GRANT CONNECT ON DATABASE postgres TO helper');
  appUrl = `postgres://app@127.0.0.1:${postgres.port}/app_db`;
}, 60_000);
afterAll(async () => {
  await postgres?.destroy();
});

/** Whether the connection `target` makes is encrypted, as the server sees it. */
async function encrypted(target: DatabaseTarget): Promise<boolean> {
  const db = createDb(target, { max: 1 });
  try {
    const result = await db.raw<{ rows: { ssl: boolean }[] }>(
      'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()',
    );
    return result.rows[0]!.ssl;
  } finally {
    await db.destroy();
  }
}

/** A logger whose warnings are kept, to count them. */
function recordingLogger(): { log: Logger; warnings: string[] } {
  const warnings: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) {
        const entry = JSON.parse(line) as { level: number; msg: string };
        if (entry.level === 40) warnings.push(entry.msg);
      }
      done();
    },
  });
  return { log: pino({ level: 'info' }, sink), warnings };
}

/** Runs one of the product's commands (`src/cli/NAME.ts`) as a real process. */
async function runCli(
  name: string,
  env: Record<string, string>,
): Promise<{ code: number | null; warnings: string[]; output: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', `src/cli/${name}.ts`], {
    env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', (exitCode) => resolve(exitCode)));
  const warnings = output
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { level: number; msg: string })
    .filter((entry) => entry.level === 40)
    .map((entry) => entry.msg);
  return { code, warnings, output };
}

describe('Postgres over SSL with a certificate nobody can verify', { timeout: 120_000 }, () => {
  it('DATABASE_SSL=no-verify connects encrypted; false connects unencrypted (refused where SSL is required)', async () => {
    expect(await encrypted({ url: appUrl, ssl: 'no-verify' })).toBe(true);
    expect(await encrypted({ url: postgres.url, ssl: 'false' })).toBe(false);
    await expect(encrypted({ url: appUrl, ssl: 'false' })).rejects.toThrow(/no pg_hba.conf entry/);
  });

  it('DATABASE_SSL=true refuses the self-signed certificate, with an error naming the setting', async () => {
    await expect(encrypted({ url: appUrl, ssl: 'true' })).rejects.toThrow(/self[- ]signed certificate/);
    await expect(ensureDatabase({ url: appUrl, ssl: 'true' })).rejects.toThrow(
      /certificate was refused; set DATABASE_SSL=no-verify.*self[- ]signed certificate/,
    );
  });

  it("unset, the URL's sslmode decides with libpq's meanings", async () => {
    const unset = (query: string): DatabaseTarget => ({ url: `${appUrl}?${query}`, ssl: undefined });
    // require: encrypted, the certificate not checked (node-postgres alone would check it).
    expect(await encrypted(unset('sslmode=require'))).toBe(true);
    expect(await encrypted(unset('sslmode=prefer'))).toBe(true);
    // verify-ca checks the chain only: the server's own certificate as the root passes for 127.0.0.1 …
    expect(await encrypted(unset(`sslmode=verify-ca&sslrootcert=${postgres.certificatePath!}`))).toBe(true);
    // … verify-full also checks the name (the certificate is for localhost), and without a root nothing passes.
    await expect(encrypted(unset(`sslmode=verify-full&sslrootcert=${postgres.certificatePath!}`))).rejects.toThrow(
      /does not match certificate/,
    );
    await expect(encrypted(unset('sslmode=verify-full'))).rejects.toThrow(/self[- ]signed certificate/);
    // No sslmode, or disable: unencrypted.
    expect(await encrypted({ url: postgres.url, ssl: undefined })).toBe(false);
    expect(await encrypted({ url: `${postgres.url}?sslmode=disable`, ssl: undefined })).toBe(false);
    // A misspelt sslmode is named, not taken for unencrypted.
    expect(() => createDb(unset('sslmode=requir'))).toThrow(/unknown sslmode "requir"/);
    // DATABASE_SSL, when set, wins over the URL.
    expect(await encrypted({ url: `${postgres.url}?sslmode=require`, ssl: 'false' })).toBe(false);
    expect(await encrypted({ url: `${appUrl}?sslmode=disable`, ssl: 'no-verify' })).toBe(true);
  });

  it('the whole product works over SSL: the release phase migrates, then a postback is applied', async () => {
    const env = { DATABASE_URL: appUrl, DATABASE_SSL: 'no-verify' };
    const release = await runCli('migrate', env);
    expect(release.code, release.output).toBe(0);
    expect(release.warnings).toEqual([]);
    const h = await startHarness({
      workers: true,
      env: { ...env, REDIS_URL: redis.url, REDIS_TLS_REJECT_UNAUTHORIZED: 'false' },
    });
    try {
      expect((await fetch(`${h.baseUrl}/readyz`)).status).toBe(200);
      const { botId, url } = await createBotWithEndpoint(h);
      expect((await fetch(`${url}?chatId=77&refID=over-ssl`)).status).toBe(202);
      expect(await waitFor(() => dialogField(h, botId, 77, 'refID'))).toBe('over-ssl');
      const rows = await h.db.raw<{ rows: { ssl: boolean }[] }>(
        "SELECT DISTINCT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.usename = 'app'",
      );
      expect(rows.rows).toEqual([{ ssl: true }]);
    } finally {
      await h.close();
    }
  });
});

describe('a database the user may not create, nor reach `postgres` for (Heroku)', { timeout: 120_000 }, () => {
  it('an existing database is used without a word: the release phase migrates it', async () => {
    // Migrated by the test above already; this role cannot connect to `postgres` nor CREATE DATABASE.
    await expect(
      postgres.query("SELECT 1 FROM pg_roles WHERE rolname = 'app' AND NOT rolcreatedb"),
    ).resolves.toMatchObject({ rowCount: 1 });
    const release = await runCli('migrate', { DATABASE_URL: appUrl, DATABASE_SSL: 'no-verify' });
    expect(release.code, release.output).toBe(0);
    expect(release.warnings).toEqual([]);
    expect(release.output).toContain('schema up to date');
  });

  it('a missing database that cannot be created is reported once, naming why; the migration then fails on its own', async () => {
    const missing = `postgres://app@127.0.0.1:${postgres.port}/app_missing`;
    const release = await runCli('migrate', { DATABASE_URL: missing, DATABASE_SSL: 'no-verify' });
    // One warning of its own (knex then logs its failing connections under 'knex').
    const own = release.warnings.filter((msg) => msg !== 'knex');
    expect(own, release.output).toHaveLength(1);
    expect(own[0]).toMatch(
      /"app_missing" does not exist and cannot be created.*permission denied for database "postgres"/,
    );
    expect(release.code).not.toBe(0);
    expect(release.output).toMatch(/database "app_missing" does not exist/);
  });

  it('where `postgres` is reachable but CREATE DATABASE is refused, that is the reason given', async () => {
    const { log, warnings } = recordingLogger();
    const target = { url: `postgres://helper@127.0.0.1:${postgres.port}/helper_missing`, ssl: 'no-verify' as const };
    expect(await ensureDatabase(target, log)).toBe(false);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/CREATE DATABASE was refused.*permission denied to create database/);
  });

  it('a role that may create databases still gets one on first start', async () => {
    const { log, warnings } = recordingLogger();
    const target = {
      url: `postgres://postgres@127.0.0.1:${postgres.port}/created_on_start`,
      ssl: 'no-verify' as const,
    };
    expect(await ensureDatabase(target, log)).toBe(true);
    expect(await ensureDatabase(target, log)).toBe(false);
    expect(warnings).toEqual([]);
  });
});
