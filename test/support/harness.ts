import { randomBytes } from 'node:crypto';
import type { Knex } from 'knex';
import { expect } from 'vitest';
import { loadConfig, type Config } from '../../src/config/env.js';
import { createDb, databaseTarget } from '../../src/db/connection.js';
import { createLogger, type Logger } from '../../src/config/log.js';
import { dropPrefix as drop } from '../../src/redis/drop-prefix.js';
import { redisTarget } from '../../src/redis/connection.js';
import { startWebTier, type WebTier } from '../../src/http/server.js';
import { startWorkerTier, type WorkerTier } from '../../src/workers/worker-tier.js';
import { databaseUrl } from './database.js';
import { startFakeTelegram, type FakeTelegram } from './fake-telegram.js';

export const ADMIN_KEY = 'test-admin-key-0123456789';
export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

export interface HarnessOptions {
  web?: boolean;
  workers?: boolean;
  /** Long-poll bots with tokens (only when PUBLIC_URL is not https); off unless asked. */
  poll?: boolean;
  env?: Record<string, string>;
  /** The tiers' logger (default: one at the configured level on stdout). */
  log?: Logger;
}

export interface Harness {
  config: Config;
  /** The fake Bot API every Telegram call of this harness goes to. */
  telegram: FakeTelegram;
  db: Knex;
  web?: WebTier;
  workers?: WorkerTier;
  baseUrl: string;
  /** A management API call with the admin key. */
  api(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
  close(): Promise<void>;
}

/** A unique BullMQ prefix, so test files never share queues. */
export function uniquePrefix(): string {
  return `fpt_${randomBytes(5).toString('hex')}`;
}

export function testConfig(env: Record<string, string> = {}): Config {
  return loadConfig({
    DATABASE_URL: databaseUrl(),
    REDIS_URL,
    PORT: '0',
    ADMIN_API_KEY: ADMIN_KEY,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    QUEUE_PREFIX: uniquePrefix(),
    ...env,
  });
}

/** Deletes every Redis key under a prefix. */
export async function dropPrefix(prefix: string): Promise<void> {
  await drop(REDIS_URL, prefix);
}

export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const telegram = await startFakeTelegram();
  const config = testConfig({ TELEGRAM_API_ROOT: telegram.apiRoot, TELEGRAM_POLL_TIMEOUT: '1', ...options.env });
  const log = options.log ?? createLogger(config.logLevel);
  const db = createDb(databaseTarget(config));
  const workers = options.workers ? await startWorkerTier(config, db, log, { poll: options.poll ?? false }) : undefined;
  const web = options.web === false ? undefined : await startWebTier(config, db, log);
  const baseUrl = web ? `http://127.0.0.1:${web.port}` : '';
  return {
    config,
    telegram,
    db,
    web,
    workers,
    baseUrl,
    api: async (method, path, body) => {
      const response = await fetch(`${baseUrl}${path}`, {
        method,
        headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await response.text();
      return { status: response.status, body: text ? JSON.parse(text) : null };
    },
    close: async () => {
      await web?.close();
      await workers?.close();
      await db.destroy();
      await telegram.close();
      await drop(redisTarget(config), config.queuePrefix);
    },
  };
}

/**
 * Checks an error answer of the API (`{ ok: false, error: { code, message, param? } }`): its status,
 * its code, a message, and the parameter it names when `param` is given.
 */
export function expectApiError(res: { status: number; body: any }, status: number, code: string, param?: string): void {
  const what = JSON.stringify(res.body);
  expect(res.status, what).toBe(status);
  expect(res.body.ok, what).toBe(false);
  expect(res.body.error.code, what).toBe(code);
  expect(typeof res.body.error.message, what).toBe('string');
  expect(res.body.error.message.length, what).toBeGreaterThan(0);
  if (param !== undefined) expect(res.body.error.param, what).toBe(param);
}

/**
 * Polls until `check` returns a truthy value, or fails after `timeoutMs`. Every `intervalMs`: most
 * checks are one small query, and a test's wall time is mostly such waits.
 */
export async function waitFor<T>(
  check: () => Promise<T | undefined | null | false>,
  timeoutMs = 10_000,
  what = 'condition',
  intervalMs = 10,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Creates a bot with one postback endpoint; returns their ids and the postback URL. */
export async function createBotWithEndpoint(
  h: Harness,
  rateLimit?: number,
): Promise<{ botId: string; endpointId: string; url: string }> {
  const bot = await h.api('POST', '/api/v1/bots', { name: 'test bot' });
  if (bot.status !== 201) throw new Error(`bot create failed: ${JSON.stringify(bot.body)}`);
  const endpoint = await h.api('POST', `/api/v1/bots/${bot.body.id}/webhooks`, {
    name: 'tracker',
    ...(rateLimit ? { rateLimit } : {}),
  });
  if (endpoint.status !== 201) throw new Error(`webhook create failed: ${JSON.stringify(endpoint.body)}`);
  return {
    botId: bot.body.id,
    endpointId: endpoint.body.id,
    url: `${h.baseUrl}/api/bots/webhooks/${endpoint.body.id}/updateDialog`,
  };
}
