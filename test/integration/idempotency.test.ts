import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import {
  claimIdempotencyKey,
  idempotencyKey,
  idempotencyKeyRef,
  settleIdempotencyKey,
} from '../../src/redis/idempotency.js';
import { createScriptedBot, type TestBot } from '../support/bot-scripts.js';
import { startHarness, waitFor, type Harness } from '../support/harness.js';
import { startPrivateRedis, type PrivateRedis } from '../support/private-redis.js';

// A Redis of this file's own: it is made to hang (DEBUG SLEEP) and to run out of memory.
let server: PrivateRedis;
let redis: Redis;
let h: Harness;
let bot: TestBot;

beforeAll(async () => {
  server = await startPrivateRedis({ args: ['--enable-debug-command', 'yes', '--maxmemory-policy', 'noeviction'] });
  redis = server.client();
  h = await startHarness({ workers: true, env: { REDIS_URL: server.url, PUBLIC_URL: 'https://flowpost.test' } });
  bot = await createScriptedBot(h, {
    start: 'a',
    steps: [
      { key: 'a', type: 'send_message', text: 'a' },
      { key: 'b', type: 'send_message', text: 'b' },
    ],
  });
});
afterAll(async () => {
  await redis?.config('SET', 'maxmemory', '0').catch(() => undefined);
  redis?.disconnect();
  await h?.close();
  await server?.stop();
});

let chat = 930_000;

/** A postback that moves the dialog (so each applied one is a journaled input of its chat). */
function postback(url: string, chatId: number, eventId: string): Promise<Response> {
  return fetch(`${url}?chatId=${chatId}&stepId=${bot.steps.get('b')}&eventId=${eventId}`);
}

async function inputsOf(chatId: number): Promise<number> {
  const rows = await h
    .db('dialog_inputs')
    .where({ bot_id: bot.botId, chat_id: chatId })
    .count<{ n: string }[]>('* as n');
  return Number(rows[0]!.n);
}

const endpointIdOf = (url: string) => url.split('/').at(-2)!;

async function secondEndpointUrl(): Promise<string> {
  const created = await h.api('POST', `/api/v1/bots/${bot.botId}/webhooks`, { name: 'second' });
  expect(created.status).toBe(201);
  return (created.body.url as string).replace(h.config.publicUrl, h.baseUrl);
}

describe('eventId', () => {
  it('is one event per postback URL: two endpoints of one bot with the same eventId are two events', async () => {
    const other = await secondEndpointUrl();
    const chatId = chat++;
    expect((await postback(bot.postbackUrl, chatId, 'order-1')).status).toBe(202);
    expect((await postback(other, chatId, 'order-1')).status).toBe(202);
    expect((await postback(other, chatId, 'order-1')).status, 'a repeat on the same URL').toBe(200);
    await waitFor(async () => (await inputsOf(chatId)) === 2, 10_000, 'both applied');
    // An endpoint's conversion URL has keys of its own.
    const endpointId = endpointIdOf(bot.postbackUrl);
    expect(idempotencyKey('p', { endpointId, route: 'conversion' }, 'x')).not.toBe(
      idempotencyKey('p', { endpointId, route: 'updateDialog' }, 'x'),
    );
  });

  it('an update queued while keys were kept per bot is still a duplicate within its 24 h', async () => {
    const digest = createHash('sha256').update('legacy-1').digest('base64url');
    await redis.set(`${h.config.queuePrefix}:idempotency:${bot.botId}:${digest}`, '4242', 'EX', 3600);
    const repeat = await postback(bot.postbackUrl, chat++, 'legacy-1');
    expect(repeat.status).toBe(200);
    expect(await repeat.json()).toEqual({ ok: true, duplicate: true, updateId: '4242' });
  });

  it('a first request answered 503 because Redis hung past its deadline does not block the retry', async () => {
    const chatId = chat++;
    const other = server.client();
    try {
      await other.ping();
      // Redis answers nothing for 1.5 s: the claim outlives the request's deadline (answered 503),
      // and lands afterwards.
      const sleeping = other.call('DEBUG', 'SLEEP', '1.5');
      await new Promise((resolve) => setTimeout(resolve, 100));
      const first = await postback(bot.postbackUrl, chatId, 'hung-1');
      expect(first.status).toBe(503);
      expect(first.headers.get('retry-after')).toBeTruthy();
      await sleeping;
    } finally {
      other.disconnect();
    }
    // The sender retries as told: accepted within a couple of seconds, not refused for 30 s.
    const retry = await waitFor(
      async () => {
        const res = await postback(bot.postbackUrl, chatId, 'hung-1');
        if (res.status === 503) {
          expect(res.headers.get('retry-after')).toBe('1');
          return null;
        }
        return res;
      },
      3_000,
      'the retry accepted',
      200,
    );
    expect(retry.status).toBe(202);
    await waitFor(async () => (await inputsOf(chatId)) === 1, 10_000, 'applied');
    expect((await postback(bot.postbackUrl, chatId, 'hung-1')).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(await inputsOf(chatId)).toBe(1);
  });

  it('a claim whose update was queued is completed even once Redis is out of memory; one that queued nothing is let go', async () => {
    const scope = { endpointId: endpointIdOf(bot.postbackUrl), route: 'updateDialog' as const, botId: bot.botId };
    const queued = idempotencyKeyRef(h.config.queuePrefix, scope, 'full-1');
    const failed = idempotencyKeyRef(h.config.queuePrefix, scope, 'full-2');
    expect(await claimIdempotencyKey(redis, queued)).toEqual({ state: 'claimed' });
    expect(await claimIdempotencyKey(redis, failed)).toEqual({ state: 'claimed' });
    // The add filled Redis up (noeviction): new writes are refused.
    await redis.config('SET', 'maxmemory', '1');
    try {
      await expect(
        claimIdempotencyKey(redis, idempotencyKeyRef(h.config.queuePrefix, scope, 'full-3')),
      ).rejects.toThrow(/OOM/);
      await settleIdempotencyKey(redis, queued, '777', []);
      await settleIdempotencyKey(redis, failed, null, []);
    } finally {
      await redis.config('SET', 'maxmemory', '0');
    }
    expect(await claimIdempotencyKey(redis, queued)).toEqual({ state: 'done', updateId: '777' });
    expect(await claimIdempotencyKey(redis, failed), 'the retry of one that queued nothing').toEqual({
      state: 'claimed',
    });
  });

  it('Redis out of memory (noeviction): 503 with Retry-After and nothing half-written; the same eventIds are applied exactly once afterwards', async () => {
    const endpointId = endpointIdOf(bot.postbackUrl);
    const usedMemory = async () => Number(/used_memory:(\d+)/.exec(await redis.info('memory'))![1]);
    // From over the limit to a few KiB under it: some writes of a postback may fit, others not.
    const steps = Array.from({ length: 29 }, (_, i) => 512 + i * 128);
    const headrooms = [-65_536, -1, 0, ...steps, 8_192, 16_384];
    const chats = headrooms.map(() => chat++);
    const first: number[] = [];
    for (const [i, headroom] of headrooms.entries()) {
      await redis.config('SET', 'maxmemory', String(Math.max(1, (await usedMemory()) + headroom)));
      const res = await postback(bot.postbackUrl, chats[i]!, `oom-${i}`);
      expect([202, 503], `headroom ${headroom}`).toContain(res.status);
      if (res.status === 503) expect(res.headers.get('retry-after')).toBeTruthy();
      first.push(res.status);
    }
    console.info(
      `out of memory, first answers by headroom: ${headrooms.map((room, i) => `${room}:${first[i]}`).join(' ')}`,
    );
    expect(first[0], 'over the limit').toBe(503);
    // No claim is left of a postback answered 503 (it is let go as soon as its add failed).
    for (const [i, status] of first.entries()) {
      if (status !== 503) continue;
      const key = idempotencyKey(h.config.queuePrefix, { endpointId, route: 'updateDialog' }, `oom-${i}`);
      await waitFor(async () => (await redis.exists(key)) === 0, 2_000, `no claim left for oom-${i}`);
    }
    await redis.config('SET', 'maxmemory', '0');

    // Every retry is accepted at once, or found a duplicate of what was accepted: no claim was
    // left behind by a postback that queued nothing.
    for (const [i, chatId] of chats.entries()) {
      const res = await postback(bot.postbackUrl, chatId, `oom-${i}`);
      expect(res.status, `retry of oom-${i} (first answered ${first[i]})`).toBe(first[i] === 202 ? 200 : 202);
    }
    for (const chatId of chats) await waitFor(async () => (await inputsOf(chatId)) >= 1, 15_000, `${chatId} applied`);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    for (const chatId of chats) expect(await inputsOf(chatId), `inputs of ${chatId}`).toBe(1);
  });
});
