import { randomBytes } from 'node:crypto';
import { insertBot } from '../src/db/bots.js';
import { insertEndpoint } from '../src/db/postback-endpoints.js';
import type { BenchDatabase } from './lib/database.js';
import { load, medianRound, type LoadFigures } from './lib/load.js';
import { freePort, runScript, waitForHttp } from './lib/processes.js';
import { dropPrefix, REDIS_URL } from './lib/redis.js';

const DURATION_S = Number(process.env.BENCH_INGEST_SECONDS ?? 6);
const ROUNDS = Number(process.env.BENCH_INGEST_ROUNDS ?? 3);
const CONNECTIONS = 64;

/** (a) ingest: the postback route under load beside a bare Koa route doing one queue.add. */
export async function benchIngest(database: BenchDatabase): Promise<{ bare: LoadFigures; postback: LoadFigures }> {
  const bot = await insertBot(database.db, { name: 'bench', timezone: 'UTC', telegram: null });
  const endpoint = await insertEndpoint(database.db, bot.id, 'bench', 1_000_000);
  await database.db('bot_fields').insert({ bot_id: bot.id, key: 'userBalance', name: 'Balance', type: 'number' });

  let i = 0;
  const path = () =>
    `/api/bots/webhooks/${endpoint.id}/updateDialog?chatId=${100_000 + (i % 10_000)}&refID=ref${i}&userBalance=${i % 5000}&tracker.clickid=c${i++}&tags=lead,fb`;
  const options = (round: number) => ({
    expect: 202,
    connections: CONNECTIONS,
    durationS: DURATION_S,
    warmUp: round === 0,
  });

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
      bareRounds.push(await load(`http://127.0.0.1:${barePort}`, path, options(round)));
      await dropPrefix(barePrefix);
      postbackRounds.push(await load(`http://127.0.0.1:${port}`, path, options(round)));
      await dropPrefix(prefix);
    }
    return { bare: medianRound(bareRounds), postback: medianRound(postbackRounds) };
  } finally {
    await Promise.all([bare.stop(), web.stop()]);
    await Promise.all([dropPrefix(barePrefix), dropPrefix(prefix)]);
  }
}
