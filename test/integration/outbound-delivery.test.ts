import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OutboundDeliveryJob } from '../../src/jobs/outbound-delivery-job.js';
import { createLogger } from '../../src/config/log.js';
import { verifySignature } from '../../src/outbound/delivery/index.js';
import { startStrandedSweeper } from '../../src/workers/stranded-deliveries-sweeper.js';
import { recordDelivery } from '../../src/runner/effects.js';
import { DeliveryRecorder } from '../../src/outbound/delivery-recorder.js';
import type { OutboundBatchJob } from '../../src/jobs/outbound-delivery-job.js';
import { createBotWithEndpoint, dropPrefix, startHarness, waitFor, type Harness } from '../support/harness.js';
import { answer, recorderFor, startTarget } from '../support/outbound-target.js';

let h: Harness;
let outbound: Queue<OutboundDeliveryJob>;
let outboundBatches: Queue<OutboundBatchJob>;
let recorder: DeliveryRecorder;
let botId: string;

beforeAll(async () => {
  h = await startHarness({
    workers: true,
    env: {
      OUTBOUND_ALLOW_CIDRS: '127.0.0.0/8,::1/128',
      OUTBOUND_RETRY_SCHEDULE: '0,0.2,0.2,0.2',
      OUTBOUND_TIMEOUT_MS: '1000',
      OUTBOUND_MAX_PER_HOST: '4',
    },
  });
  ({ chains: outbound, batches: outboundBatches, recorder } = recorderFor(h.db, h.config.queuePrefix));
  botId = (await createBotWithEndpoint(h)).botId;
});
afterAll(async () => {
  await Promise.all([outbound?.close(), outboundBatches?.close()]);
  await h?.close();
});

async function deliver(
  url: string,
  options: {
    method?: 'GET' | 'POST' | 'PUT';
    body?: string | null;
    headers?: Record<string, string>;
    bot?: string;
  } = {},
) {
  return recordDelivery(
    { deliveries: recorder },
    { botId: options.bot ?? botId, chatId: 1 },
    {
      type: 'send_webhook',
      stepId: '00000000-0000-4000-8000-000000000000',
      method: options.method ?? 'GET',
      url,
      headers: options.headers ?? {},
      body: options.body ?? null,
    },
  );
}

async function settled(id: string, timeoutMs = 10_000) {
  return waitFor(
    async () => {
      const row = await h.db('deliveries').where({ id }).first();
      return row && row.state !== 'pending' ? row : null;
    },
    timeoutMs,
    `delivery ${id} to settle`,
  );
}

async function attempts(id: string) {
  return h.db('delivery_attempts').where({ delivery_id: id }).orderBy(['chain', 'attempt']);
}

describe('delivery', () => {
  it('succeeds on 2xx with Standard Webhooks headers and a User-Agent naming flowpost', async () => {
    const target = await startTarget(answer(200));
    try {
      const id = await deliver(`${target.url}/postback?subid=abc`, { method: 'POST', body: '{"a":1}' });
      expect((await settled(id)).state).toBe('succeeded');
      const [request] = target.requests;
      expect(request!.method).toBe('POST');
      expect(request!.url).toBe('/postback?subid=abc');
      expect(request!.headers['content-type']).toBe('application/json');
      expect(request!.headers['user-agent']).toMatch(/^flowpost\/\d+\.\d+\.\d+/);
      expect(request!.headers['webhook-id']).toMatch(/^msg_/);
      expect(Number(request!.headers['webhook-timestamp'])).toBeGreaterThan(Date.now() / 1000 - 60);
      expect(request!.headers['webhook-signature']).toBeUndefined();
      const [attempt] = await attempts(id);
      expect(attempt).toMatchObject({ attempt: 1, status: 200, response_excerpt: 'answer 200' });
    } finally {
      await target.close();
    }
  });

  it('503, 503, 200 → three attempts with one webhook-id', async () => {
    let n = 0;
    const target = await startTarget((req, res) => answer(++n < 3 ? 503 : 200)(req, res));
    try {
      const id = await deliver(`${target.url}/x`);
      expect((await settled(id)).state).toBe('succeeded');
      expect((await attempts(id)).map((a) => a.status)).toEqual([503, 503, 200]);
      expect(new Set(target.requests.map((r) => r.headers['webhook-id'])).size).toBe(1);
    } finally {
      await target.close();
    }
  });

  it('honours Retry-After on a 429', async () => {
    let n = 0;
    const target = await startTarget((req, res) =>
      answer(++n === 1 ? 429 : 200, n === 1 ? { 'retry-after': '1' } : {})(req, res),
    );
    try {
      const id = await deliver(`${target.url}/x`);
      expect((await settled(id)).state).toBe('succeeded');
      const [first, second] = target.requests;
      expect(second!.at - first!.at).toBeGreaterThanOrEqual(900);
    } finally {
      await target.close();
    }
  });

  it('400 is final after one attempt; a redirect is not followed', async () => {
    const target = await startTarget((req, res) =>
      req.url === '/moved' ? answer(302, { location: `/elsewhere` })(req, res) : answer(400)(req, res),
    );
    try {
      const id = await deliver(`${target.url}/bad`);
      expect((await settled(id)).state).toBe('failed');
      expect(await attempts(id)).toHaveLength(1);
      const moved = await deliver(`${target.url}/moved`);
      expect((await settled(moved)).state).toBe('failed');
      expect(target.requests.some((r) => r.url === '/elsewhere')).toBe(false);
      expect((await attempts(moved))[0]).toMatchObject({ status: 302, error_kind: 'redirect' });
    } finally {
      await target.close();
    }
  });

  it('a timeout and a refused connection are retried, then the delivery ends failed and kept', async () => {
    const hanging = await startTarget(() => undefined);
    const closed = await startTarget(answer(200));
    const closedUrl = closed.url;
    await closed.close();
    try {
      const slow = await deliver(`${hanging.url}/x`);
      const refused = await deliver(`${closedUrl}/x`);
      const slowRow = await settled(slow, 15_000);
      expect(slowRow.state).toBe('failed');
      expect((await attempts(slow)).map((a) => a.error_kind)).toEqual(['timeout', 'timeout', 'timeout', 'timeout']);
      expect((await settled(refused)).state).toBe('failed');
      expect((await attempts(refused)).every((a) => a.error_kind === 'network')).toBe(true);
      const listed = await h.api('GET', `/api/v1/bots/${botId}/deliveries?state=failed`);
      expect(listed.body.deliveries.map((d: { id: string }) => d.id)).toEqual(expect.arrayContaining([slow, refused]));
      expect(listed.body.deliveries.find((d: { id: string }) => d.id === slow).attempts).toHaveLength(4);
    } finally {
      await hanging.close();
    }
  });
});

describe('bad requests', () => {
  it('an invalid URL, another scheme, credentials or an oversized body fail that delivery alone, with the reason', async () => {
    const target = await startTarget(answer(200));
    try {
      const bad = await Promise.all([
        deliver('not a url'),
        deliver('ftp://127.0.0.1/x'),
        deliver(`http://user:pass@127.0.0.1:${new URL(target.url).port}/x`),
        deliver(`${target.url}/big`, { method: 'POST', body: 'x'.repeat(300 * 1024) }),
      ]);
      const good = await deliver(`${target.url}/fine`);
      for (const id of bad) {
        const row = await settled(id);
        expect(row.state).toBe('failed');
        expect(row.last_error).toBeTruthy();
        expect((await attempts(id))[0]).toMatchObject({ error_kind: 'invalid_request' });
      }
      expect((await settled(good)).state).toBe('succeeded');
      expect(target.requests.map((r) => r.url)).toEqual(['/fine']);
    } finally {
      await target.close();
    }
  });
});

describe('signatures', () => {
  it("signs with the bot's secret as Standard Webhooks defines it, verifiable by a receiver", async () => {
    const target = await startTarget(answer(200));
    try {
      const created = await h.api('POST', `/api/v1/bots/${botId}/signing-secret`);
      expect(created.status).toBe(201);
      const secret: string = created.body.secret;
      expect(secret).toMatch(/^whsec_/);
      await new Promise((resolve) => setTimeout(resolve, 1_100)); // workers read a bot's secret at most once a second
      const id = await deliver(`${target.url}/signed`, { method: 'POST', body: '{"event":"sale"}' });
      await settled(id);
      const request = target.requests[0]!;
      expect(verifySignature({ secret, headers: request.headers, body: request.body }).ok).toBe(true);
      expect(verifySignature({ secret, headers: request.headers, body: '{"event":"other"}' }).ok).toBe(false);
    } finally {
      await h.api('DELETE', `/api/v1/bots/${botId}/signing-secret`);
      await target.close();
    }
  });
});

describe('replay', () => {
  it('replays a failed delivery with the same webhook-id as a fresh chain, and all failed since a time', async () => {
    let status = 400;
    const target = await startTarget((req, res) => answer(status)(req, res));
    try {
      const { botId: own } = await createBotWithEndpoint(h);
      const since = new Date(Date.now() - 1000).toISOString();
      const one = await deliver(`${target.url}/one`, { bot: own });
      const two = await deliver(`${target.url}/two`, { bot: own });
      await settled(one);
      await settled(two);
      status = 200;
      const retried = await h.api('POST', `/api/v1/deliveries/${one}/retry`);
      expect(retried.status).toBe(202);
      expect((await settled(one)).state).toBe('succeeded');
      expect((await attempts(one)).map((a) => [a.chain, a.attempt, a.status])).toEqual([
        [1, 1, 400],
        [2, 1, 200],
      ]);
      const ids = target.requests.filter((r) => r.url === '/one').map((r) => r.headers['webhook-id']);
      expect(new Set(ids).size).toBe(1);
      expect((await h.api('POST', `/api/v1/deliveries/${one}/retry`)).status).toBe(409);

      const all = await h.api('POST', `/api/v1/bots/${own}/deliveries/retry`, { since });
      expect(all.body.replayed).toBe(1);
      expect((await settled(two)).state).toBe('succeeded');
    } finally {
      await target.close();
    }
  });
});

describe('fairness', () => {
  it("a slow host does not stop a fast host's deliveries", async () => {
    const slow = await startTarget((req, res) => setTimeout(() => answer(200)(req, res), 900));
    const fast = await startTarget(answer(200));
    try {
      const slowIds = await Promise.all(Array.from({ length: 60 }, (_, i) => deliver(`${slow.url}/s${i}`)));
      await new Promise((resolve) => setTimeout(resolve, 200));
      const started = Date.now();
      const fastIds = await Promise.all(Array.from({ length: 10 }, (_, i) => deliver(`${fast.url}/f${i}`)));
      for (const id of fastIds) expect((await settled(id, 5_000)).state).toBe('succeeded');
      expect(Date.now() - started).toBeLessThan(3_000);
      const pendingSlow = await h
        .db('deliveries')
        .whereIn('id', slowIds)
        .andWhere({ state: 'pending' })
        .count<{ count: string }[]>('* as count');
      expect(Number(pendingSlow[0]!.count)).toBeGreaterThan(0); // the slow host is still working through its backlog
    } finally {
      await slow.close();
      await fast.close();
    }
  });
});

// Each test has a target of its own (the busy-host one a harness of its own too): they run at once.
describe.concurrent('deliveries recorded together', () => {
  it('share a batch job, and each is delivered and recorded with its own webhook-id', async () => {
    const target = await startTarget(answer(200));
    try {
      const ids = await Promise.all(Array.from({ length: 6 }, (_, i) => deliver(`${target.url}/together-${i}`)));
      const rows = await h.db('deliveries').whereIn('id', ids).select('queued_in');
      expect(rows).toHaveLength(6);
      expect(new Set(rows.map((row: { queued_in: string | null }) => row.queued_in)).size).toBe(1);
      expect(rows[0].queued_in).toMatch(/^batch-/);
      for (const id of ids) expect((await settled(id)).state).toBe('succeeded');
      const seen = target.requests.filter((r) => r.url.startsWith('/together-'));
      expect(seen).toHaveLength(6);
      expect(new Set(seen.map((r) => r.headers['webhook-id'])).size).toBe(6);
      for (const id of ids) expect((await attempts(id)).map((a) => a.status)).toEqual([200]);
    } finally {
      await target.close();
    }
  });

  it('those held back by a busy host wait together, as their batch job, and go when it frees', async () => {
    const own = await startHarness({
      workers: true,
      env: { OUTBOUND_ALLOW_CIDRS: '127.0.0.0/8', OUTBOUND_TIMEOUT_MS: '5000', OUTBOUND_MAX_PER_HOST: '4' },
    });
    const queues = recorderFor(own.db, own.config.queuePrefix);
    const target = await startTarget((req, res) => setTimeout(() => answer(200)(req, res), 1_500));
    try {
      const { botId: ownBot } = await createBotWithEndpoint(own);
      // The host's share is 4: four go at once; the other four wait in line, then with their batch.
      const ids = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          recordDelivery(
            { deliveries: queues.recorder },
            { botId: ownBot, chatId: 1 },
            {
              type: 'send_webhook',
              stepId: '00000000-0000-4000-8000-000000000000',
              method: 'GET',
              url: `${target.url}/held-${i}`,
              headers: {},
              body: null,
            },
          ),
        ),
      );
      const [{ queued_in: batchId }] = await own.db('deliveries').whereIn('id', ids).distinct('queued_in');
      await waitFor(
        async () => (await queues.batches.getJob(batchId))?.isDelayed(),
        5_000,
        'the batch waiting for its host',
      );
      expect((await queues.batches.getJob(batchId))!.data.deliveries).toHaveLength(4);
      expect(await queues.chains.getJobCounts('wait', 'active', 'delayed')).toEqual({ wait: 0, active: 0, delayed: 0 });
      for (const id of ids) {
        const row = await waitFor(async () => {
          const found = await own.db('deliveries').where({ id }).first();
          return found.state !== 'pending' ? found : null;
        }, 15_000);
        expect(row.state).toBe('succeeded');
        expect(
          (await own.db('delivery_attempts').where({ delivery_id: id })).map((a: { status: number }) => a.status),
        ).toEqual([200]);
      }
      expect(target.requests.filter((r) => r.url.startsWith('/held-'))).toHaveLength(8);
    } finally {
      await target.close();
      await queues.close();
      await own.close();
    }
  });

  it('a batched delivery that must retry leaves its batch and is retried alone', async () => {
    let calls = 0;
    const target = await startTarget((req, res) => {
      if (req.url === '/flaky' && ++calls === 1) return answer(503)(req, res);
      answer(200)(req, res);
    });
    try {
      const [flaky, steady] = await Promise.all([deliver(`${target.url}/flaky`), deliver(`${target.url}/steady`)]);
      expect((await settled(flaky)).state).toBe('succeeded');
      expect((await settled(steady)).state).toBe('succeeded');
      expect((await attempts(flaky)).map((a) => a.status)).toEqual([503, 200]);
      expect((await attempts(steady)).map((a) => a.status)).toEqual([200]);
    } finally {
      await target.close();
    }
  });
});

describe('target safety', () => {
  it('refuses private targets at connect time, never connecting, and fails them at once', async () => {
    const guarded = await startHarness({ workers: true, env: { OUTBOUND_RETRY_SCHEDULE: '0,0.2,0.2' } });
    const queues = recorderFor(guarded.db, guarded.config.queuePrefix);
    const v4 = await startTarget(answer(200));
    const v6 = await startTarget(answer(200), '::1');
    try {
      const { botId: ownBot } = await createBotWithEndpoint(guarded);
      const port = new URL(v4.url).port;
      const urls = [
        `${v4.url}/a`,
        `http://localhost:${port}/b`,
        `${v6.url}/c`,
        `http://2130706433:${port}/d`,
        'http://169.254.169.254/latest/meta-data',
      ];
      const ids = await Promise.all(
        urls.map((url) =>
          recordDelivery(
            { deliveries: queues.recorder },
            { botId: ownBot, chatId: 1 },
            {
              type: 'send_webhook',
              stepId: '00000000-0000-4000-8000-000000000000',
              method: 'GET',
              url,
              headers: {},
              body: null,
            },
          ),
        ),
      );
      for (const id of ids) {
        const row = await waitFor(async () => {
          const found = await guarded.db('deliveries').where({ id }).first();
          return found.state !== 'pending' ? found : null;
        });
        expect(row.state).toBe('failed');
        const rows = await guarded.db('delivery_attempts').where({ delivery_id: id });
        expect(rows).toHaveLength(1);
        expect(rows[0].error_kind).toBe('refused_target');
        expect(rows[0].error).toMatch(/loopback|link/i);
      }
      expect(v4.connections).toBe(0);
      expect(v6.connections).toBe(0);
    } finally {
      await v4.close();
      await v6.close();
      await queues.close();
      await guarded.close();
    }
  });
});

describe('a run handled again', () => {
  it('records and sends a send_webhook effect once, not once per try', async () => {
    const target = await startTarget(answer(200));
    try {
      const effect = {
        type: 'send_webhook' as const,
        stepId: '00000000-0000-4000-8000-000000000000',
        method: 'GET' as const,
        url: `${target.url}/once`,
        headers: {},
        body: null,
      };
      const first = await recordDelivery({ deliveries: recorder }, { botId, chatId: 77 }, effect, 'run-3/effect-1');
      await settled(first);
      const again = await recordDelivery({ deliveries: recorder }, { botId, chatId: 77 }, effect, 'run-3/effect-1');
      expect(again).toBe(first);
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(target.requests.filter((r) => r.url === '/once')).toHaveLength(1);
      expect(await h.db('deliveries').where({ id: first })).toHaveLength(1);
    } finally {
      await target.close();
    }
  });
});

describe('a delivery left without a job', () => {
  it('is left alone while its batch job still holds it, and queued again once that job is gone', async () => {
    // Queues without workers, so the batch job stays waiting.
    const idle = recorderFor(h.db, `${h.config.queuePrefix}_idle`);
    const sweeper = startStrandedSweeper({
      db: h.db,
      queue: idle.chains,
      recorder: idle.recorder,
      log: createLogger('silent'),
      intervalMs: 100,
      staleMs: 60_000,
    });
    try {
      const ids = ['6a0c3f1e-9a3b-4c7e-8d2a-1b2c3d4e5f61', '6a0c3f1e-9a3b-4c7e-8d2a-1b2c3d4e5f62'];
      await idle.recorder.recordAll(
        ids.map((id) => ({
          id,
          chatId: 1,
          stepId: null,
          request: {
            botId,
            messageId: `msg_${id}`,
            method: 'GET',
            url: 'http://example.test/',
            headers: {},
            body: null,
          },
        })),
      );
      await h
        .db('deliveries')
        .whereIn('id', ids)
        .update({ updated_at: new Date(Date.now() - 3_600_000) });
      const [{ queued_in: batch }] = await h.db('deliveries').whereIn('id', ids).select('queued_in');
      expect(batch).toMatch(/^batch-/);
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect((await idle.chains.getJobCounts('wait')).wait).toBe(0);
      await (await idle.batches.getJob(batch))!.remove();
      await waitFor(
        async () => (await idle.chains.getJobCounts('wait')).wait === 2,
        5_000,
        'the deliveries queued again',
      );
    } finally {
      sweeper.stop();
      await idle.close();
      await dropPrefix(`${h.config.queuePrefix}_idle`);
      await h
        .db('deliveries')
        .whereIn('id', ['6a0c3f1e-9a3b-4c7e-8d2a-1b2c3d4e5f61', '6a0c3f1e-9a3b-4c7e-8d2a-1b2c3d4e5f62'])
        .delete();
    }
  });

  it('is queued again by the sweeper and delivered', async () => {
    const target = await startTarget(answer(200));
    const id = '5f0c3f1e-9a3b-4c7e-8d2a-1b2c3d4e5f60';
    await h.db('deliveries').insert({
      id,
      bot_id: botId,
      chat_id: 1,
      message_id: 'msg_stranded',
      method: 'GET',
      url: `${target.url}/stranded`,
      headers: '{}',
      updated_at: new Date(Date.now() - 3_600_000),
    });
    const sweeper = startStrandedSweeper({
      db: h.db,
      queue: outbound,
      recorder,
      log: createLogger('silent'),
      intervalMs: 100,
      staleMs: 60_000,
    });
    try {
      expect((await settled(id)).state).toBe('succeeded');
      expect(target.requests.map((r) => r.url)).toEqual(['/stranded']);
    } finally {
      sweeper.stop();
      await target.close();
    }
  });
});
