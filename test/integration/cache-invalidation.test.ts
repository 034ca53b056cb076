import { Redis } from 'ioredis';
import type { Knex } from 'knex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config/env.js';
import { createDb } from '../../src/db/connection.js';
import { createLogger } from '../../src/config/log.js';
import { publishInvalidation, subscribeInvalidations, type Invalidation } from '../../src/redis/invalidation.js';
import { startWebTier, type WebTier } from '../../src/http/server.js';
import { ADMIN_KEY, dropPrefix, REDIS_URL, testConfig, uniquePrefix } from '../support/harness.js';
import { startTcpProxy } from '../support/tcp-proxy.js';

/**
 * Two web processes sharing one configuration (database, Redis, queue prefix), each with its own
 * database pool and cache. Changes made through A must reach B's cache within a second.
 */
let config: Config;
let dbA: Knex;
let dbB: Knex;
let webA: WebTier;
let webB: WebTier;
const log = createLogger('silent');

beforeAll(async () => {
  config = testConfig();
  dbA = createDb(config.databaseUrl);
  dbB = createDb(config.databaseUrl);
  webA = await startWebTier(config, dbA, log);
  webB = await startWebTier(config, dbB, log);
  // A started web tier takes traffic at once: its queue connection is up.
  for (const web of [webA, webB]) expect((await fetch(`http://127.0.0.1:${web.port}/readyz`)).status).toBe(200);
});

afterAll(async () => {
  await webA?.close();
  await webB?.close();
  await dbA?.destroy();
  await dbB?.destroy();
  if (config) await dropPrefix(config.queuePrefix);
});

const INVALIDATION_DEADLINE_MS = 1000;

async function apiA(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const response = await fetch(`http://127.0.0.1:${webA.port}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

function postbackUrl(web: WebTier, endpointId: string, query: string): string {
  return `http://127.0.0.1:${web.port}/api/bots/webhooks/${endpointId}/updateDialog?${query}`;
}

async function statusOf(url: string): Promise<number> {
  const response = await fetch(url);
  await response.arrayBuffer();
  return response.status;
}

/** Polls B until it answers `expected`; returns how long that took after `since`, or fails at the deadline. */
async function pollUntil(url: string, expected: number, since: number): Promise<number> {
  let last = 0;
  for (;;) {
    last = await statusOf(url);
    const elapsed = Date.now() - since;
    if (last === expected) return elapsed;
    if (elapsed > INVALIDATION_DEADLINE_MS) {
      throw new Error(`web B still answered ${last} (not ${expected}) ${elapsed} ms after the change through web A`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function botWithWebhookThroughA(): Promise<{ botId: string; endpointId: string }> {
  const bot = await apiA('POST', '/api/v1/bots', { name: 'two web tiers' });
  expect(bot.status).toBe(201);
  const webhook = await apiA('POST', `/api/v1/bots/${bot.body.id}/webhooks`, { name: 'tracker' });
  expect(webhook.status).toBe(201);
  return { botId: bot.body.id, endpointId: webhook.body.id };
}

describe('cache invalidation across web processes', () => {
  it('a webhook created through A works through B; deleted through A, B answers 404 within a second', async () => {
    const { botId, endpointId } = await botWithWebhookThroughA();
    const url = postbackUrl(webB, endpointId, 'chatId=1&refID=1');
    expect(await statusOf(url)).toBe(202);
    // B now holds the endpoint in its cache (which otherwise lives a minute).
    expect(await statusOf(url)).toBe(202);

    const deleted = await fetch(`http://127.0.0.1:${webA.port}/api/v1/bots/${botId}/webhooks/${endpointId}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${ADMIN_KEY}` },
    });
    const since = Date.now();
    expect(deleted.status).toBe(204);
    expect(await statusOf(postbackUrl(webA, endpointId, 'chatId=1'))).toBe(404);
    await pollUntil(url, 404, since);
    // And it stays gone.
    expect(await statusOf(url)).toBe(404);
  });

  it('a webhook deleted through A in upper case is gone from B too', async () => {
    const { botId, endpointId } = await botWithWebhookThroughA();
    const url = postbackUrl(webB, endpointId, 'chatId=2');
    expect(await statusOf(url)).toBe(202);
    const deleted = await apiA('DELETE', `/api/v1/bots/${botId}/webhooks/${endpointId.toUpperCase()}`);
    const since = Date.now();
    expect(deleted.status).toBe(204);
    await pollUntil(url, 404, since);
    await pollUntil(postbackUrl(webB, endpointId.toUpperCase(), 'chatId=2'), 404, since);
  });

  it('a field type changed through A makes B validate by the new type within a second', async () => {
    const { botId, endpointId } = await botWithWebhookThroughA();
    expect((await apiA('PUT', `/api/v1/bots/${botId}/fields/score`, { name: 'Score', type: 'text' })).status).toBe(200);
    const text = postbackUrl(webB, endpointId, 'chatId=3&score=high');
    expect(await statusOf(text)).toBe(202); // B caches the bot with score as text

    const changed = await apiA('PUT', `/api/v1/bots/${botId}/fields/score`, { name: 'Score', type: 'number' });
    const since = Date.now();
    expect(changed.status).toBe(200);
    await pollUntil(text, 422, since);
    expect(await statusOf(postbackUrl(webB, endpointId, 'chatId=3&score=42'))).toBe(202);

    // And back: a field defined through A after B cached the bot applies too.
    const defined = await apiA('PUT', `/api/v1/bots/${botId}/fields/plan`, {
      name: 'Plan',
      type: 'select',
      options: ['free', 'pro'],
    });
    const since2 = Date.now();
    expect(defined.status).toBe(200);
    await pollUntil(postbackUrl(webB, endpointId, 'chatId=3&plan=enterprise'), 422, since2);
  });

  it('a script uploaded through A makes a new step key usable through B within a second', async () => {
    const { botId, endpointId } = await botWithWebhookThroughA();
    const first = await apiA('PUT', `/api/v1/bots/${botId}/script`, {
      start: 'a',
      steps: [{ key: 'a', type: 'send_message', text: 'a' }],
    });
    expect(first.status).toBe(200);
    expect(await statusOf(postbackUrl(webB, endpointId, 'chatId=4&stepId=a'))).toBe(202);
    const newStep = postbackUrl(webB, endpointId, 'chatId=4&stepId=b');
    expect(await statusOf(newStep)).toBe(422); // B caches the bot without step b

    const second = await apiA('PUT', `/api/v1/bots/${botId}/script`, {
      start: 'b',
      steps: [
        { key: 'b', type: 'send_message', text: 'b' },
        { key: 'c', type: 'send_message', text: 'c' },
      ],
    });
    const since = Date.now();
    expect(second.status).toBe(200);
    await pollUntil(newStep, 202, since);
    // The removed step is refused by B as well, and the new step's id works like its key.
    await pollUntil(postbackUrl(webB, endpointId, 'chatId=4&stepId=a'), 422, since);
    const idOfC = second.body.steps.find((s: { key: string }) => s.key === 'c').id as string;
    expect(await statusOf(postbackUrl(webB, endpointId, `chatId=4&stepId=${idOfC}`))).toBe(202);
  });

  it('a web process started after a change sees it, and takes postbacks as soon as it has started', async () => {
    const { botId, endpointId } = await botWithWebhookThroughA();
    const live = await botWithWebhookThroughA();
    expect((await apiA('DELETE', `/api/v1/bots/${botId}/webhooks/${endpointId}`)).status).toBe(204);
    const dbC = createDb(config.databaseUrl);
    const webC = await startWebTier(config, dbC, log);
    try {
      // No 503 in its first moments: its queue connection is up before it listens.
      expect(await statusOf(`http://127.0.0.1:${webC.port}/readyz`)).toBe(200);
      expect(await statusOf(postbackUrl(webC, live.endpointId, 'chatId=5'))).toBe(202);
      expect(await statusOf(postbackUrl(webC, endpointId, 'chatId=5'))).toBe(404);
    } finally {
      await webC.close();
      await dbC.destroy();
    }
  });
});

describe('the invalidation subscription', () => {
  it('every message published after a reset is delivered (the reset comes once subscribed)', async () => {
    const publisher = new Redis(REDIS_URL);
    try {
      for (let i = 0; i < 5; i++) {
        const prefix = uniquePrefix();
        const received: Invalidation[] = [];
        let resets = 0;
        const subscription = subscribeInvalidations(REDIS_URL, prefix, log, {
          onMessage: (message) => received.push(message),
          onReset: () => {
            resets++;
            // A cache entry loaded right after the reset must still be dropped by a later change.
            void publishInvalidation(publisher, prefix, { kind: 'endpoint', id: `after-reset-${i}` });
          },
        });
        try {
          const deadline = Date.now() + 1000;
          while (received.length === 0 && Date.now() < deadline)
            await new Promise((resolve) => setTimeout(resolve, 10));
          expect(resets).toBe(1);
          expect(received).toEqual([{ kind: 'endpoint', id: `after-reset-${i}` }]);
        } finally {
          await subscription.close();
        }
      }
    } finally {
      publisher.disconnect();
    }
  });

  it('a web process that lost Redis while a webhook was deleted answers 404 once reconnected', async () => {
    const proxy = await startTcpProxy(Number(new URL(REDIS_URL).port || 6379), new URL(REDIS_URL).hostname);
    const redisViaProxy = new URL(REDIS_URL);
    redisViaProxy.port = String(proxy.port);
    const dbC = createDb(config.databaseUrl);
    const webC = await startWebTier({ ...config, redisUrl: redisViaProxy.toString() }, dbC, log);
    try {
      const { botId, endpointId } = await botWithWebhookThroughA();
      const url = postbackUrl(webC, endpointId, 'chatId=6');
      expect(await statusOf(url)).toBe(202);
      // Let A's invalidation of the new webhook reach C first, then have C cache the webhook.
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(await statusOf(url)).toBe(202);
      await proxy.cut();
      // Deleted while C cannot hear about it.
      expect((await apiA('DELETE', `/api/v1/bots/${botId}/webhooks/${endpointId}`)).status).toBe(204);
      expect(await statusOf(url)).toBe(503); // C still knows the webhook, and cannot queue
      await proxy.restore();
      // Once C is connected again (its queue accepts postbacks), the missed deletion is honoured.
      const other = await botWithWebhookThroughA();
      const deadline = Date.now() + 15_000;
      while ((await statusOf(postbackUrl(webC, other.endpointId, 'chatId=6'))) !== 202) {
        if (Date.now() > deadline) throw new Error('web C did not reconnect to Redis');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      await waitForStatus(url, 404, 1000);
    } finally {
      await webC.close();
      await dbC.destroy();
      await proxy.close();
    }
  });
});

async function waitForStatus(url: string, expected: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 0;
  while ((last = await statusOf(url)) !== expected) {
    if (Date.now() > deadline) throw new Error(`still ${last}, not ${expected}, after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
