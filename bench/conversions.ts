import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';
import { insertBot } from '../src/db/bots.js';
import { insertCampaign } from '../src/db/campaigns.js';
import { insertDestination } from '../src/db/destinations.js';
import { insertEndpoint } from '../src/db/postback-endpoints.js';
import type { BenchDatabase } from './lib/database.js';
import { freePort, runScript, waitForHttp, type Child } from './lib/processes.js';
import { dropPrefix, REDIS_URL } from './lib/redis.js';

const CONVERSIONS = Number(process.env.BENCH_CONVERSIONS ?? 5_000);

export interface ConversionFigures {
  conversions: number;
  /** Conversions accepted (202) per second by the web process. */
  acceptedPerSec: number;
  /** Conversions per second from the first call to the last request at the destination's receiver. */
  deliveredPerSec: number;
}

/**
 * (i) conversions: sales by clickid for claimed clicks, as fast as 64 connections send them, through
 * one worker process (record, journal, decide, send onwards) to a destination's local receiver.
 */
export async function benchConversions(database: BenchDatabase): Promise<ConversionFigures> {
  const { db } = database;
  const bot = await insertBot(db, { name: 'bench', timezone: 'UTC', telegram: null });
  const campaign = await insertCampaign(db, { botId: bot.id, name: 'bench', params: [], fields: {}, startStep: null });
  const endpoint = await insertEndpoint(db, bot.id, 'bench', 1_000_000);
  await db.raw(
    `INSERT INTO clicks (bot_id, campaign_id, token, clickid, fields, claimed_chat_id, claimed_seq, claimed_at)
     SELECT ?, ?, 'v' || g, 'v' || g, jsonb_build_object('clickid', 'v' || g), 300000 + g, g, now()
     FROM generate_series(0, ? - 1) AS g`,
    [bot.id, campaign.id, CONVERSIONS],
  );
  const [sinkPort, port] = [await freePort(), await freePort()];
  await insertDestination(db, bot.id, {
    name: 'tracker',
    on: ['conversion'],
    campaigns: null,
    statuses: null,
    method: 'GET',
    url: `http://127.0.0.1:${sinkPort}/postback?subid={clickid}&status={status}&payout={payout}`,
    headers: {},
    body: null,
  });
  const prefix = `fpb_${randomBytes(4).toString('hex')}`;
  const env = {
    DATABASE_URL: database.url,
    REDIS_URL,
    QUEUE_PREFIX: prefix,
    ADMIN_API_KEY: 'bench-admin-key-0123456789',
    PUBLIC_URL: 'https://bench.flowpost.test',
    OUTBOUND_ALLOW_CIDRS: '127.0.0.0/8',
    WORKER_CONCURRENCY: '256',
  };
  const children: Child[] = [
    runScript('bench/servers/sink.ts', { PORT: String(sinkPort) }),
    runScript('src/cli/web.ts', { ...env, PORT: String(port) }),
    runScript('src/cli/worker.ts', env),
  ];
  const base = `http://127.0.0.1:${port}`;
  const sink = `http://127.0.0.1:${sinkPort}`;
  try {
    await Promise.all([waitForHttp(`${base}/healthz`), waitForHttp(`${sink}/_arrivals`)]);
    const pool = new Pool(base, { connections: 64 });
    const started = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        while (next < CONVERSIONS) {
          const g = next++;
          const res = await pool.request({
            method: 'GET',
            path: `/api/bots/webhooks/${endpoint.id}/conversion?subid=v${g}&status=sale&payout=10&currency=USD`,
          });
          await res.body.dump();
          if (res.statusCode !== 202) throw new Error(`conversion v${g} answered ${res.statusCode}`);
        }
      }),
    );
    const accepted = performance.now();
    await pool.close();
    let arrived = 0;
    const deadline = Date.now() + 120_000;
    while (arrived < CONVERSIONS) {
      if (Date.now() > deadline) throw new Error(`only ${arrived} of ${CONVERSIONS} conversions reached the receiver`);
      const res = await fetch(`${sink}/_arrivals`);
      arrived += ((await res.json()) as unknown[]).length;
      if (arrived < CONVERSIONS) await sleep(20);
    }
    const delivered = performance.now();
    return {
      conversions: CONVERSIONS,
      acceptedPerSec: CONVERSIONS / ((accepted - started) / 1000),
      deliveredPerSec: CONVERSIONS / ((delivered - started) / 1000),
    };
  } finally {
    await Promise.all(children.map((child) => child.stop()));
    await dropPrefix(prefix);
  }
}
