import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Knex } from 'knex';
import { createDb } from '../../src/db/connection.js';
import { migrateLatest } from '../../src/db/migrate.js';
import { startFakeTelegram, type FakeTelegram } from '../../test/support/fake-telegram.js';
import { startPrivatePostgres, type PrivatePostgres } from '../../test/support/private-postgres.js';
import { freePort, waitForHttp } from '../../bench/lib/processes.js';
import { runFlowpost, type FlowpostProcess } from './processes.js';
import { startRedisServer, type RedisServer, type RedisServerOptions } from './redis-server.js';

const ADMIN_KEY = 'chaos-admin-key-0123456789';
/** The first chat id of the dialogs a scenario starts; dialog i is chat FIRST_CHAT + i. */
const FIRST_CHAT = 1_000_000;

/** One Send Webhook call as the outbound target received it. */
export interface HookCall {
  webhookId: string;
  chat: string;
  n: number;
  at: number;
}

/** The local HTTP server the script's Send Webhook step calls: every call recorded, answered 200. */
export interface HookTarget {
  url: string;
  calls: HookCall[];
  close(): Promise<void>;
}

async function startHookTarget(): Promise<HookTarget> {
  const calls: HookCall[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    req.on('end', () => {
      try {
        const parsed = JSON.parse(body) as { chat: string; n: string };
        calls.push({ webhookId: String(req.headers['webhook-id']), chat: parsed.chat, n: Number(parsed.n), at: now() });
      } catch {
        calls.push({ webhookId: String(req.headers['webhook-id']), chat: '?', n: Number.NaN, at: now() });
      }
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    calls,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Milliseconds on one clock for everything the suite times (sends, answers, applications, faults). */
export const now = () => performance.now();

export interface StackOptions {
  name: string;
  workers: number;
  /** Dialogs started (by /start) before the scenario; postbacks address them by index. */
  dialogs: number;
  redis?: RedisServerOptions;
  postgresConfig?: Record<string, string>;
  /** Extra settings for every flowpost process. */
  env?: Record<string, string>;
}

export interface Stack {
  postgres: PrivatePostgres;
  redis: RedisServer;
  /** Knex on the scenario's database (its pool reconnects after a Postgres restart). */
  db: Knex;
  telegram: FakeTelegram;
  target: HookTarget;
  web: FlowpostProcess;
  workers: FlowpostProcess[];
  base: string;
  botId: string;
  /** `/api/bots/webhooks/<postbackId>/updateDialog` */
  postbackPath: string;
  /** A unique prefix for the eventIds of this run. */
  runId: string;
  logDir: string;
  chatOf(dialog: number): number;
  /** The path of postback n to dialog `dialog`: sets fields.n, adds tag p<n>, moves to the Send Webhook step. */
  postback(n: number, dialog: number, options?: { move?: boolean }): string;
  /** Starts one more worker process. */
  startWorker(): FlowpostProcess;
  /** The n of every postback whose tag is on a dialog in Postgres. */
  appliedNumbers(): Promise<Set<number>>;
  close(): Promise<void>;
}

export async function startStack(options: StackOptions): Promise<Stack> {
  const logDir = mkdtempSync(join(tmpdir(), `flowpost-chaos-${options.name}-`));
  const postgres = await startPrivatePostgres(options.postgresConfig ? { config: options.postgresConfig } : {});
  const databaseUrl = await postgres.createDatabase('flowpost');
  const db = createDb(databaseUrl);
  await migrateLatest(db);
  const redis = await startRedisServer(options.redis);
  const telegram = await startFakeTelegram();
  const target = await startHookTarget();
  const port = await freePort();
  const env = {
    DATABASE_URL: databaseUrl,
    REDIS_URL: redis.url,
    ADMIN_API_KEY: ADMIN_KEY,
    // https: bots get a webhook (set on the fake) and updates arrive at POST /telegram/<botId>.
    PUBLIC_URL: 'https://chaos.flowpost.test',
    TELEGRAM_API_ROOT: telegram.apiRoot,
    OUTBOUND_ALLOW_CIDRS: '127.0.0.0/8',
    ...options.env,
  };
  let workerCount = 0;
  const startWorker = () =>
    runFlowpost(`worker-${++workerCount}`, 'src/cli/worker.ts', env, join(logDir, `worker-${workerCount}.log`));
  const web = runFlowpost('web', 'src/cli/web.ts', { ...env, PORT: String(port) }, join(logDir, 'web.log'));
  const workers = Array.from({ length: options.workers }, startWorker);
  const base = `http://127.0.0.1:${port}`;
  const api = async (method: string, path: string, body: unknown) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
    return (await res.json()) as { id: string };
  };
  const stack = {
    postgres,
    redis,
    db,
    telegram,
    target,
    web,
    workers,
    base,
    logDir,
    runId: randomBytes(4).toString('hex'),
  };
  const close = async () => {
    await Promise.all([web, ...workers].map((child) => child.stop()));
    await db.destroy();
    await Promise.all([telegram.close(), target.close(), redis.destroy(), postgres.destroy()]);
  };
  try {
    await waitForHttp(`${base}/healthz`);
    const token = `4242:chaos-${randomBytes(8).toString('hex')}`;
    const bot = await api('POST', '/api/v1/bots', { name: `chaos ${options.name}`, telegramToken: token });
    const endpoint = await api('POST', `/api/v1/bots/${bot.id}/webhooks`, { name: 'chaos', rateLimit: 100_000 });
    await api('PUT', `/api/v1/bots/${bot.id}/script`, {
      start: 'hello',
      steps: [
        { key: 'hello', type: 'change_tags', add: ['started'] },
        {
          key: 'hook',
          type: 'send_webhook',
          method: 'POST',
          url: `${target.url}/hook`,
          headers: { 'content-type': 'application/json' },
          body: '{"chat":"{{chatId}}","n":"{{fields.n}}"}',
        },
      ],
    });
    await startDialogs(db, base, bot.id, options.dialogs);
    const postbackPath = `/api/bots/webhooks/${endpoint.id}/updateDialog`;
    return {
      ...stack,
      close,
      botId: bot.id,
      postbackPath,
      chatOf: (dialog) => FIRST_CHAT + dialog,
      postback: (n, dialog, { move = true } = {}) =>
        `${postbackPath}?chatId=${FIRST_CHAT + dialog}${move ? '&stepId=hook' : ''}&fields.n=${n}&tags=p${n}&eventId=${stack.runId}-${n}`,
      startWorker: () => {
        const worker = startWorker();
        workers.push(worker);
        return worker;
      },
      appliedNumbers: async () => {
        const rows = await db.raw<{ rows: Array<{ tag: string }> }>(
          `SELECT unnest(tags) AS tag FROM dialogs WHERE bot_id = ?`,
          [bot.id],
        );
        const applied = new Set<number>();
        for (const { tag } of rows.rows) if (tag.startsWith('p')) applied.add(Number(tag.slice(1)));
        return applied;
      },
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/** /start from `count` chats through the Telegram webhook route; resolves once every dialog has started. */
async function startDialogs(db: Knex, base: string, botId: string, count: number): Promise<void> {
  const { telegram_secret: secret } = await db('bots')
    .where({ id: botId })
    .first<{ telegram_secret: string }>('telegram_secret');
  for (let i = 0; i < count; i += 50) {
    await Promise.all(
      Array.from({ length: Math.min(50, count - i) }, async (_, j) => {
        const chat = FIRST_CHAT + i + j;
        const res = await fetch(`${base}/telegram/${botId}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': secret },
          body: JSON.stringify({
            update_id: i + j + 1,
            message: {
              message_id: 1,
              date: Math.floor(Date.now() / 1000),
              chat: { id: chat, type: 'private' },
              from: { id: chat, is_bot: false, first_name: 'Chaos' },
              text: '/start',
            },
          }),
        });
        if (res.status !== 200) throw new Error(`/start refused: ${res.status}`);
      }),
    );
  }
  const deadline = Date.now() + 60_000;
  for (;;) {
    const [row] = await db('dialogs')
      .where({ bot_id: botId })
      .whereNotNull('started_at')
      .count<Array<{ started: string }>>({ started: '*' });
    const started = Number(row?.started ?? 0);
    if (started >= count) return;
    if (Date.now() > deadline) throw new Error(`only ${started} of ${count} dialogs started`);
    await sleep(100);
  }
}
