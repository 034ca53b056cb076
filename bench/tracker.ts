import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';
import { insertBot } from '../src/db/bots.js';
import { insertCampaign } from '../src/db/campaigns.js';
import { insertEndpoint } from '../src/db/postback-endpoints.js';
import type { BenchDatabase } from './lib/database.js';
import { load, medianRound, type LoadFigures } from './lib/load.js';
import { freePort, runScript, waitForHttp, type Child } from './lib/processes.js';
import { dropPrefix, REDIS_URL } from './lib/redis.js';
import { percentile } from './lib/stats.js';

const ADMIN_KEY = 'bench-admin-key-0123456789';
const DURATION_S = Number(process.env.BENCH_TRACKER_SECONDS ?? 6);
const ROUNDS = Number(process.env.BENCH_TRACKER_ROUNDS ?? 3);
const CONNECTIONS = 64;
const STEADY_RATE = 1_000;
const STEADY_CLICKS = Number(process.env.BENCH_TRACKER_STEADY_CLICKS ?? 5_000);
/** Claimed clicks postbacks name again and again: after its first read each one is in the web tier's LRU. */
const WARM_CLICKS = 10_000;
/**
 * Claimed clicks named in turn, each once per cycle: more than the LRU holds (50,000), so every
 * postback reads its click from PostgreSQL, as a network's first postback for a click does.
 */
const COLD_CLICKS = 100_000;
const USER_AGENT =
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148';

export interface SteadyFigures {
  rate: number;
  clicks: number;
  p50: number;
  p99: number;
  max: number;
}

export interface TrackerFigures {
  clickBare: LoadFigures;
  clickRoute: LoadFigures;
  /** Two rounds each: bare then flowpost, then flowpost then bare. */
  clickSteadyBare: SteadyFigures[];
  clickSteady: SteadyFigures[];
  postbackBare: LoadFigures;
  /** The same postbacks addressed by chatId: what the click id check adds shows against this. */
  postbackByChat: LoadFigures;
  postbackWarm: LoadFigures;
  postbackCold: LoadFigures;
}

function checked(name: string, figures: LoadFigures): LoadFigures {
  if (figures.unexpected || figures.errors)
    throw new Error(`${name}: ${figures.unexpected} unexpected answers, ${figures.errors} errors`);
  return figures;
}

/** Clicks at a fixed rate through an undici pool, each timed from its send to the end of its 302. */
async function steadyClicks(base: string, path: () => string): Promise<SteadyFigures> {
  const pool = new Pool(base, { connections: 64 });
  const latencies: number[] = [];
  const inFlight: Promise<void>[] = [];
  const startedAt = performance.now();
  try {
    for (let i = 0; i < STEADY_CLICKS; i++) {
      const wait = startedAt + (i * 1000) / STEADY_RATE - performance.now();
      if (wait > 0) await sleep(wait);
      const sent = performance.now();
      inFlight.push(
        pool.request({ method: 'GET', path: path(), headers: { 'user-agent': USER_AGENT } }).then(async (res) => {
          await res.body.dump();
          if (res.statusCode !== 302) throw new Error(`click answered ${res.statusCode}, not 302`);
          latencies.push(performance.now() - sent);
        }),
      );
    }
    await Promise.all(inFlight);
  } finally {
    await pool.close();
  }
  latencies.sort((a, b) => a - b);
  return {
    rate: STEADY_RATE,
    clicks: STEADY_CLICKS,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    max: latencies.at(-1) ?? 0,
  };
}

/**
 * (g) the click redirect `GET /c/{id}` (one INSERT, 302) under load and at a steady 1,000 clicks/s,
 *     beside a bare Koa route doing the same INSERT.
 * (h) postbacks by clickid of claimed clicks, beside the bare Koa + queue.add route of (a).
 */
export async function benchTracker(database: BenchDatabase): Promise<TrackerFigures> {
  const { db } = database;
  const bot = await insertBot(db, { name: 'bench', timezone: 'UTC', telegram: null });
  // A campaign link needs its bot's username only; no token, so nothing talks to Telegram.
  await db('bots')
    .where({ id: bot.id })
    .update({ telegram_info: JSON.stringify({ username: 'flowpost_bench_bot' }) });
  const campaign = await insertCampaign(db, {
    botId: bot.id,
    name: 'bench',
    params: ['ad_name', 'utm_source'],
    fields: { source: 'fb' },
    startStep: null,
  });
  const endpoint = await insertEndpoint(db, bot.id, 'bench', 1_000_000);
  await db('bot_fields').insert({ bot_id: bot.id, key: 'userBalance', name: 'Balance', type: 'number' });
  // Claimed clicks, as /start c_… leaves them: `w<n>` named again and again, `x<n>` each once a cycle.
  await db.raw(
    `INSERT INTO clicks (bot_id, campaign_id, token, clickid, fields, claimed_chat_id, claimed_seq, claimed_at)
     SELECT ?, ?, 't' || p || g, p || g, jsonb_build_object('clickid', p || g, 'campaign', 'bench'), 100000 + g, g, now()
     FROM (VALUES ('w', ?::int), ('x', ?::int)) AS sets (p, n), generate_series(0, n - 1) AS g`,
    [bot.id, campaign.id, WARM_CLICKS, COLD_CLICKS],
  );
  await db.raw('ANALYZE clicks');

  const barePrefix = `fpb_${randomBytes(4).toString('hex')}`;
  const prefix = `fpb_${randomBytes(4).toString('hex')}`;
  const [clickPort, queuePort, port] = [await freePort(), await freePort(), await freePort()];
  const children: Child[] = [
    runScript('bench/servers/click-koa.ts', {
      PORT: String(clickPort),
      DATABASE_URL: database.url,
      BOT_ID: bot.id,
      CAMPAIGN_ID: campaign.id,
    }),
    runScript('bench/servers/bare-koa.ts', { PORT: String(queuePort), REDIS_URL, QUEUE_PREFIX: barePrefix }),
    runScript('src/cli/web.ts', {
      PORT: String(port),
      DATABASE_URL: database.url,
      REDIS_URL,
      QUEUE_PREFIX: prefix,
      ADMIN_API_KEY: ADMIN_KEY,
      PUBLIC_URL: 'https://bench.flowpost.test',
    }),
  ];
  const clickBase = `http://127.0.0.1:${clickPort}`;
  const queueBase = `http://127.0.0.1:${queuePort}`;
  const base = `http://127.0.0.1:${port}`;
  try {
    await Promise.all([waitForHttp(`${clickBase}/`), waitForHttp(`${queueBase}/`), waitForHttp(`${base}/healthz`)]);

    // Every click its own click id (as a tracker sends them), so each is one INSERT on either side.
    let n = 0;
    const clickPath = (server: string) => () =>
      `/c/${campaign.id}?ad_name=spring_sale_${n % 50}&utm_source=facebook&clickid=${server}${n}&fbclid=IwAR2bench${n++}xYz`;
    const clickOptions = (round: number) => ({
      expect: 302,
      connections: CONNECTIONS,
      durationS: DURATION_S,
      warmUp: round === 0,
      headers: { 'user-agent': USER_AGENT },
    });
    const clickBare: LoadFigures[] = [];
    const clickRoute: LoadFigures[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      clickBare.push(checked('bare click route', await load(clickBase, clickPath('b'), clickOptions(round))));
      clickRoute.push(checked('click redirect', await load(base, clickPath('g'), clickOptions(round))));
    }
    // Each steady round starts from a checkpoint, so that neither side meets the one the load rounds' rows bring on.
    const steady = async (server: 'bare' | 'flowpost') => {
      await db.raw('CHECKPOINT');
      await sleep(1_000);
      return server === 'bare' ? steadyClicks(clickBase, clickPath('sb')) : steadyClicks(base, clickPath('sg'));
    };
    const clickSteadyBare: SteadyFigures[] = [];
    const clickSteady: SteadyFigures[] = [];
    clickSteadyBare.push(await steady('bare'));
    clickSteady.push(await steady('flowpost'));
    clickSteady.push(await steady('flowpost'));
    clickSteadyBare.push(await steady('bare'));

    let i = 0;
    let cold = 0;
    const postbackPath = (clickid: () => string) => () =>
      `/api/bots/webhooks/${endpoint.id}/updateDialog?clickid=${clickid()}&refID=ref${i}&userBalance=${i++ % 5000}`;
    const warmPath = postbackPath(() => `w${i % WARM_CLICKS}`);
    const chatPath = () =>
      `/api/bots/webhooks/${endpoint.id}/updateDialog?chatId=${100_000 + (i % WARM_CLICKS)}&refID=ref${i}&userBalance=${i++ % 5000}`;
    const coldPath = postbackPath(() => `x${cold++ % COLD_CLICKS}`);
    const postbackOptions = (round: number) => ({
      expect: 202,
      connections: CONNECTIONS,
      durationS: DURATION_S,
      warmUp: round === 0,
    });
    const postbackBare: LoadFigures[] = [];
    const postbackByChat: LoadFigures[] = [];
    const postbackWarm: LoadFigures[] = [];
    const postbackCold: LoadFigures[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      postbackBare.push(checked('bare queue route', await load(queueBase, warmPath, postbackOptions(round))));
      await dropPrefix(barePrefix);
      postbackByChat.push(checked('postback by chatId', await load(base, chatPath, postbackOptions(round))));
      await dropPrefix(prefix);
      postbackWarm.push(checked('postback by clickid', await load(base, warmPath, postbackOptions(round))));
      await dropPrefix(prefix);
      postbackCold.push(checked('postback by clickid', await load(base, coldPath, postbackOptions(round))));
      await dropPrefix(prefix);
    }
    return {
      clickBare: medianRound(clickBare),
      clickRoute: medianRound(clickRoute),
      clickSteadyBare,
      clickSteady,
      postbackBare: medianRound(postbackBare),
      postbackByChat: medianRound(postbackByChat),
      postbackWarm: medianRound(postbackWarm),
      postbackCold: medianRound(postbackCold),
    };
  } finally {
    await Promise.all(children.map((child) => child.stop()));
    await Promise.all([dropPrefix(barePrefix), dropPrefix(prefix)]);
  }
}
