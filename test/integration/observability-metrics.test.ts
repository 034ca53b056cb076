import { Queue } from 'bullmq';
import type { UserFromGetMe } from 'grammy/types';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/config/log.js';
import { QUEUES } from '../../src/jobs/queue-names.js';
import { startWorkerMetricsServer, type MetricsServer } from '../../src/observability/metrics-server.js';
import { recordDelivery } from '../../src/runner/effects.js';
import { BotRegistry, TelegramSender } from '../../src/telegram/index.js';
import { TELEGRAM_ERRORS } from '../support/fake-telegram.js';
import {
  ADMIN_KEY,
  createBotWithEndpoint,
  REDIS_URL,
  startHarness,
  waitFor,
  type Harness,
} from '../support/harness.js';
import { sample } from '../support/metrics-text.js';
import { answer, recorderFor, startTarget } from '../support/outbound-target.js';

const METRICS_TOKEN = 'metrics-token-0123456789abcdef';

let h: Harness;

beforeAll(async () => {
  h = await startHarness({
    workers: true,
    env: { METRICS_TOKEN, OUTBOUND_ALLOW_CIDRS: '127.0.0.0/8', OUTBOUND_TIMEOUT_MS: '1000' },
  });
});
afterAll(async () => {
  await h?.close();
});

async function scrape(base = h.baseUrl, token: string | null = METRICS_TOKEN): Promise<string> {
  const response = await fetch(`${base}/metrics`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return response.text();
}

describe('GET /metrics', () => {
  it('requires the METRICS_TOKEN bearer when it is set, answered in the API error shape', async () => {
    for (const headers of [
      {} as Record<string, string>,
      { authorization: 'Bearer wrong-token-0123456789' },
      { authorization: `Bearer ${ADMIN_KEY}` },
    ]) {
      const response = await fetch(`${h.baseUrl}/metrics`, { headers });
      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toBe('Bearer');
      expect(await response.json()).toMatchObject({ ok: false, error: { code: 'unauthorized' } });
    }
    const text = await scrape();
    expect(text).toContain('nodejs_eventloop_lag_seconds');
    expect(text).toContain('process_resident_memory_bytes');
    expect(text).toContain('flowpost_db_pool_connections{state="used"}');
  });

  it('is open when no METRICS_TOKEN is set', async () => {
    const open = await startHarness({});
    try {
      await scrape(open.baseUrl, null);
    } finally {
      await open.close();
    }
  });

  it('counts requests by route name and answer code, and times them by route and method', async () => {
    const { url } = await createBotWithEndpoint(h);
    const before = await scrape();
    const labels = { route: 'updateDialog', method: 'GET' };
    for (let i = 0; i < 3; i++) expect((await fetch(`${url}?chatId=${100 + i}&a=1`)).status).toBe(202);
    expect((await fetch(`${url}?a=1`)).status).toBe(400); // neither chatId nor clickid
    expect((await fetch(`${h.baseUrl}/api/v1/bots/not-a-uuid`)).status).toBe(401);
    const after = await scrape();
    const delta = (name: string, l: Record<string, string>) => sample(after, name, l) - sample(before, name, l);
    expect(delta('flowpost_http_requests_total', { ...labels, code: '202' })).toBe(3);
    expect(delta('flowpost_http_requests_total', { ...labels, code: '400' })).toBe(1);
    expect(delta('flowpost_http_requests_total', { route: 'management', code: '401' })).toBe(1);
    expect(delta('flowpost_http_request_duration_seconds_count', labels)).toBe(4);
    // Route names, never raw paths: the endpoint's secret id is not a label.
    expect(after).not.toContain(url.split('/').at(-2)!);
  });

  it('shows each queue of the prefix: waiting, delayed and failed counts, and the oldest waiting age', async () => {
    const prefix = h.config.queuePrefix;
    const batches = new Queue(QUEUES.outboundBatches, { connection: { url: REDIS_URL }, prefix });
    // Its worker stops taking jobs, so what is added stays where it is put.
    const worker = h.workers!.workers.find((w) => w.name === QUEUES.outboundBatches)!;
    try {
      await worker.pause();
      await batches.add('b', { deliveries: [] }, { timestamp: Date.now() - 90_000 });
      await batches.add('b', { deliveries: [] });
      await batches.add('later', { deliveries: [] }, { delay: 60_000 });
      const text = await scrape();
      const q = { prefix, queue: QUEUES.outboundBatches };
      expect(sample(text, 'flowpost_queue_jobs', { ...q, state: 'waiting' })).toBe(2);
      expect(sample(text, 'flowpost_queue_jobs', { ...q, state: 'delayed' })).toBe(1);
      expect(sample(text, 'flowpost_queue_jobs', { ...q, state: 'active' })).toBe(0);
      const age = sample(text, 'flowpost_queue_oldest_waiting_seconds', q);
      expect(age).toBeGreaterThanOrEqual(90);
      expect(age).toBeLessThan(120);
      expect(sample(text, 'flowpost_queue_figures_up', { prefix })).toBe(1);
      for (const name of Object.values(QUEUES))
        expect(text).toContain(`flowpost_queue_jobs{prefix="${prefix}",queue="${name}",state="failed"}`);
    } finally {
      await batches.obliterate({ force: true });
      worker.resume();
      await batches.close();
    }
  });

  it('counts outbound webhook attempts by outcome class', async () => {
    const { recorder, close } = recorderFor(h.db, h.config.queuePrefix);
    const ok = await startTarget(answer(204));
    const broken = await startTarget(answer(503));
    const refused = await startTarget(answer(200));
    await refused.close();
    const { botId } = await createBotWithEndpoint(h);
    try {
      const before = await scrape();
      const deliver = (url: string) =>
        recordDelivery(
          { deliveries: recorder },
          { botId, chatId: 1 },
          {
            type: 'send_webhook',
            stepId: '00000000-0000-4000-8000-000000000000',
            method: 'GET',
            url,
            headers: {},
            body: null,
          },
        );
      await deliver(`${ok.url}/hook`);
      await deliver(`${broken.url}/hook`);
      await deliver(`${refused.url}/hook`);
      const outcome = (text: string, name: string) =>
        sample(text, 'flowpost_webhook_attempts_total', { outcome: name });
      const after = await waitFor(
        async () => {
          const text = await scrape();
          return ['2xx', '5xx', 'refused'].every((o) => outcome(text, o) > outcome(before, o)) ? text : null;
        },
        10_000,
        'the three attempts to be counted',
      );
      expect(outcome(after, '2xx') - outcome(before, '2xx')).toBe(1);
      expect(sample(after, 'flowpost_webhook_attempt_duration_seconds_count')).toBeGreaterThan(
        sample(before, 'flowpost_webhook_attempt_duration_seconds_count'),
      );
    } finally {
      await Promise.all([ok.close(), broken.close(), close()]);
    }
  });

  it('counts Telegram sends by method and outcome, and the 429s with their retry_after', async () => {
    const sender = new TelegramSender({
      registry: new BotRegistry({ apiRoot: h.telegram.apiRoot }),
      limiter: null,
      sleep: async () => undefined,
    });
    const token = '4242:AAH-metrics-test-token-abcdefghijkl';
    const bot = {
      botId: 'b',
      token,
      botInfo: { id: 4242, is_bot: true, first_name: 'm', username: 'm_bot' } as UserFromGetMe,
    };
    const before = await scrape();
    h.telegram.failNext('sendMessage', TELEGRAM_ERRORS.tooManyRequests(7), { token });
    expect(await sender.sendMessage(bot, 1, 'hello')).toMatchObject({ ok: true });
    const after = await scrape();
    const delta = (name: string, labels: Record<string, string> = {}) =>
      sample(after, name, labels) - sample(before, name, labels);
    expect(delta('flowpost_telegram_calls_total', { method: 'sendMessage', outcome: 'ok' })).toBe(1);
    expect(delta('flowpost_telegram_calls_total', { method: 'sendMessage', outcome: 'throttled' })).toBe(1);
    expect(delta('flowpost_telegram_retry_after_seconds_count')).toBe(1);
    expect(delta('flowpost_telegram_retry_after_seconds_sum')).toBe(7);
    expect(delta('flowpost_telegram_retry_after_seconds_bucket', { le: '5' })).toBe(0);
    expect(delta('flowpost_telegram_retry_after_seconds_bucket', { le: '10' })).toBe(1);
  });
});

describe('a worker process on METRICS_PORT', () => {
  let server: MetricsServer;
  beforeAll(async () => {
    server = await startWorkerMetricsServer(h.config, h.db, createLogger('silent'), h.workers!.workers, 0);
  });
  afterAll(async () => {
    await server?.close();
  });

  it('serves its job durations and outcomes behind the same token, and /readyz', async () => {
    const base = `http://127.0.0.1:${server.port}`;
    expect((await fetch(`${base}/metrics`)).status).toBe(401);
    const { url } = await createBotWithEndpoint(h);
    const labels = { queue: QUEUES.dialogUpdates, outcome: 'completed' };
    const before = await scrape(base);
    expect((await fetch(`${url}?chatId=77&a=1`)).status).toBe(202);
    const after = await waitFor(
      async () => {
        const text = await scrape(base);
        return sample(text, 'flowpost_jobs_total', labels) > sample(before, 'flowpost_jobs_total', labels)
          ? text
          : null;
      },
      10_000,
      'the dialog update to be counted',
    );
    expect(sample(after, 'flowpost_job_duration_seconds_count', { queue: QUEUES.dialogUpdates })).toBeGreaterThan(
      sample(before, 'flowpost_job_duration_seconds_count', { queue: QUEUES.dialogUpdates }),
    );
    expect(after).toContain('flowpost_db_pool_connections');
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({
      ok: true,
      checks: { postgres: { ok: true }, redis: { ok: true }, workers: { ok: true } },
    });
  });
});

describe('the queue dashboard at /admin/queues', () => {
  const basic = (password: string) => `Basic ${Buffer.from(`admin:${password}`).toString('base64')}`;

  it('asks for the admin key, as Basic credentials a browser prompts for', async () => {
    for (const headers of [
      {} as Record<string, string>,
      { authorization: basic('wrong') },
      { authorization: `Bearer ${METRICS_TOKEN}` },
    ]) {
      const response = await fetch(`${h.baseUrl}/admin/queues`, { headers });
      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toBe('Basic realm="flowpost"');
      expect(await response.json()).toMatchObject({ ok: false, error: { code: 'unauthorized' } });
    }
    expect((await fetch(`${h.baseUrl}/admin/queues/api/queues`)).status).toBe(401);
  });

  it('serves the page and its API, listing every queue of the prefix, with the key as Basic password or Bearer', async () => {
    const page = await fetch(`${h.baseUrl}/admin/queues`, { headers: { authorization: basic(ADMIN_KEY) } });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    const html = await page.text();
    // Its scripts and styles are served under the same path, behind the same key.
    expect(html).toContain('<base href="/admin/queues/" />');
    const asset = `/admin/queues/${/src="(static\/[^"]+)"/.exec(html)![1]!}`;
    expect((await fetch(`${h.baseUrl}${asset}`)).status).toBe(401);
    expect((await fetch(`${h.baseUrl}${asset}`, { headers: { authorization: basic(ADMIN_KEY) } })).status).toBe(200);
    const api = await fetch(`${h.baseUrl}/admin/queues/api/queues`, {
      headers: { authorization: `Bearer ${ADMIN_KEY}` },
    });
    expect(api.status).toBe(200);
    const body = (await api.json()) as { queues: Array<{ name: string }> };
    expect(body.queues.map((q) => q.name).sort()).toEqual(Object.values(QUEUES).sort());
  });
});
