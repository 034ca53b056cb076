import autocannon from 'autocannon';
import { randomBytes } from 'node:crypto';
import { insertBot } from '../src/db/bots.js';
import { insertEndpoint } from '../src/db/postback-endpoints.js';
import type { BenchDatabase } from './lib/database.js';
import { freePort, runScript, waitForHttp } from './lib/processes.js';
import { dropPrefix, REDIS_URL } from './lib/redis.js';

export interface LoadFigures {
  reqPerSec: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
}

const DURATION_S = Number(process.env.BENCH_INGEST_SECONDS ?? 6);
const ROUNDS = Number(process.env.BENCH_INGEST_ROUNDS ?? 3);
const CONNECTIONS = 64;

async function load(url: string, path: (i: number) => string, warmUp: boolean): Promise<LoadFigures> {
  let i = 0;
  // Warm up (JIT, connection pools), then measure.
  if (warmUp)
    await autocannon({
      url,
      connections: CONNECTIONS,
      duration: 2,
      requests: [{ setupRequest: (r) => ({ ...r, path: path(i++) }) }],
    });
  const result = await autocannon({
    url,
    connections: CONNECTIONS,
    duration: DURATION_S,
    requests: [{ setupRequest: (r) => ({ ...r, path: path(i++) }) }],
  });
  return {
    reqPerSec: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
  };
}

/** (a) ingest: the postback route under load beside a bare Koa route doing one queue.add. */
export async function benchIngest(database: BenchDatabase): Promise<{ bare: LoadFigures; postback: LoadFigures }> {
  const bot = await insertBot(database.db, { name: 'bench', timezone: 'UTC', telegram: null });
  const endpoint = await insertEndpoint(database.db, bot.id, 'bench', 1_000_000);
  await database.db('bot_fields').insert({ bot_id: bot.id, key: 'userBalance', name: 'Balance', type: 'number' });

  const path = (i: number) =>
    `/api/bots/webhooks/${endpoint.id}/updateDialog?chatId=${100_000 + (i % 10_000)}&refID=ref${i}&userBalance=${i % 5000}&tracker.clickid=c${i}&tags=lead,fb`;

  const barePrefix = `fpb_${randomBytes(4).toString('hex')}`;
  const barePort = await freePort();
  const prefix = `fpb_${randomBytes(4).toString('hex')}`;
  const port = await freePort();
  const bare = runScript('bench/servers/bare-koa.ts', { PORT: String(barePort), REDIS_URL, QUEUE_PREFIX: barePrefix });
  const web = runScript('src/cli/web.ts', {
    PORT: String(port),
    DATABASE_URL: database.url,
    REDIS_URL,
    QUEUE_PREFIX: prefix,
    ADMIN_API_KEY: 'bench-admin-key-0123456789',
  });
  try {
    await waitForHttp(`http://127.0.0.1:${barePort}/`);
    await waitForHttp(`http://127.0.0.1:${port}/healthz`);
    // Alternate the two, round after round, so that both see the same machine; keep each one's median round.
    const bareRounds: LoadFigures[] = [];
    const postbackRounds: LoadFigures[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      bareRounds.push(await load(`http://127.0.0.1:${barePort}`, path, round === 0));
      await dropPrefix(barePrefix);
      postbackRounds.push(await load(`http://127.0.0.1:${port}`, path, round === 0));
      await dropPrefix(prefix);
    }
    return { bare: median(bareRounds), postback: median(postbackRounds) };
  } finally {
    await Promise.all([bare.stop(), web.stop()]);
    await Promise.all([dropPrefix(barePrefix), dropPrefix(prefix)]);
  }
}

function median(rounds: LoadFigures[]): LoadFigures {
  const sorted = [...rounds].sort((a, b) => a.reqPerSec - b.reqPerSec);
  const middle = sorted[Math.floor(sorted.length / 2)]!;
  return {
    ...middle,
    non2xx: rounds.reduce((n, r) => n + r.non2xx, 0),
    errors: rounds.reduce((n, r) => n + r.errors, 0),
  };
}
