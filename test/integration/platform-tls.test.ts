/**
 * Managed platforms (Heroku) serve Redis over TLS with a self-signed certificate
 * (`rediss://…`) and Postgres over SSL with a certificate nobody can verify. Every connection the
 * product makes honours REDIS_TLS_REJECT_UNAUTHORIZED and DATABASE_SSL, and the checks are real:
 * with verification on, the same servers are refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWorkerConnection, type RedisTarget } from '../../src/redis/connection.js';
import { dropPrefix } from '../../src/redis/drop-prefix.js';
import { createBotWithEndpoint, startHarness, uniquePrefix, waitFor, type Harness } from '../support/harness.js';
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
