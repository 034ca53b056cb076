import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publishInvalidation } from '../../src/redis/invalidation.js';
import { createBotWithEndpoint, REDIS_URL, startHarness, waitFor, type Harness } from '../support/harness.js';

let h: Harness;
let redis: Redis;
beforeAll(async () => {
  h = await startHarness();
  redis = new Redis(REDIS_URL);
});
afterAll(async () => {
  redis?.disconnect();
  await h?.close();
});

/** Counts the statements the web tier sends to Postgres while `run` runs, and how long it ran. */
async function queriesDuring(run: () => Promise<void>): Promise<{ queries: number; seconds: number }> {
  let queries = 0;
  const listener = () => queries++;
  const started = Date.now();
  h.db.on('query', listener);
  try {
    await run();
  } finally {
    h.db.off('query', listener);
  }
  return { queries, seconds: (Date.now() - started) / 1000 };
}

// The list of known ids read once, and the budget of lookups for ids not in it (20 at once, then
// 5 a second), plus the real postback's own: far below one query per request.
const queryBound = (seconds: number) => 30 + Math.ceil(5 * seconds);

/** `total` requests, `parallel` at a time. */
async function flood(total: number, parallel: number, request: (i: number) => Promise<number>): Promise<number[]> {
  const statuses: number[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < total) statuses.push(await request(next++));
    }),
  );
  return statuses;
}

const FLOOD = 1_000;

describe('floods of made-up ids', () => {
  it('1,000 postbacks to random endpoint ids: all 404, a bounded number of queries, and a real postback meanwhile is accepted', async () => {
    const real = await createBotWithEndpoint(h);
    expect((await fetch(`${real.url}?chatId=1&refID=warm`)).status).toBe(202);
    let legit = 0;
    const statuses: number[] = [];
    const { queries, seconds } = await queriesDuring(async () => {
      const [unknown] = await Promise.all([
        flood(FLOOD, 50, async () => {
          const res = await fetch(`${h.baseUrl}/api/bots/webhooks/${randomUUID()}/updateDialog?chatId=1`);
          await res.arrayBuffer();
          return res.status;
        }),
        (async () => {
          const res = await fetch(`${real.url}?chatId=2&refID=during-flood`);
          legit = res.status;
        })(),
      ]);
      statuses.push(...unknown);
    });
    expect(statuses).toHaveLength(FLOOD);
    expect(new Set(statuses)).toEqual(new Set([404]));
    expect(legit).toBe(202);
    console.info(`${FLOOD} postbacks to unknown endpoint ids in ${seconds} s: ${queries} Postgres queries`);
    expect(queries).toBeLessThanOrEqual(queryBound(seconds));
  }, 120_000); // a loaded machine may take a minute for the flood: its queries are bounded by the time it took

  it('1,000 Telegram webhook calls for random bot ids: all 401, a bounded number of queries', async () => {
    const statuses: number[] = [];
    const { queries, seconds } = await queriesDuring(async () => {
      statuses.push(
        ...(await flood(FLOOD, 50, async () => {
          const res = await fetch(`${h.baseUrl}/telegram/${randomUUID()}`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': 'guess' },
            body: JSON.stringify({ update_id: 1 }),
          });
          await res.arrayBuffer();
          return res.status;
        })),
      );
    });
    expect(new Set(statuses)).toEqual(new Set([401]));
    console.info(`${FLOOD} Telegram webhook calls to unknown bot ids in ${seconds} s: ${queries} Postgres queries`);
    expect(queries).toBeLessThanOrEqual(queryBound(seconds));
  }, 120_000); // a loaded machine may take a minute for the flood: its queries are bounded by the time it took

  it('an endpoint created right after its id was answered unknown is accepted at once (invalidation)', async () => {
    const { botId } = await createBotWithEndpoint(h);
    const id = randomUUID();
    const url = `${h.baseUrl}/api/bots/webhooks/${id}/updateDialog`;
    expect((await fetch(`${url}?chatId=3`)).status).toBe(404);
    expect((await fetch(`${url}?chatId=3`)).status, 'remembered as unknown').toBe(404);
    // As the management API of another web process would: insert, then publish the invalidation.
    await h.db('postback_endpoints').insert({ id, bot_id: botId, name: 'late', rate_limit: null });
    await publishInvalidation(redis, h.config.queuePrefix, { kind: 'endpoint', id });
    // Well before the unknown id would have been forgotten (15 s).
    const status = await waitFor(
      async () => {
        const res = await fetch(`${url}?chatId=3&refID=late`);
        return res.status === 202 ? res.status : null;
      },
      2_000,
      'the new endpoint accepted',
      50,
    );
    expect(status).toBe(202);
  });
});
