import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createScriptedBot, dialogOf, sendUpdate, waitForMessages } from '../support/bot-scripts.js';
import { fakeUpdates } from '../support/fake-telegram.js';
import { startHarness, waitFor, type Harness } from '../support/harness.js';

interface Received {
  method: string;
  path: string;
  query: URLSearchParams;
  body: string;
}

/** A tracker / ad platform: records what it receives; answers 500 to the first `failFirst` calls of a path. */
async function startReceiver(failFirst: Record<string, number> = {}) {
  const received: Received[] = [];
  const server: Server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://receiver');
      received.push({
        method: req.method ?? '',
        path: url.pathname,
        query: url.searchParams,
        body: Buffer.concat(chunks).toString('utf8'),
      });
      const left = failFirst[url.pathname] ?? 0;
      if (left > 0) {
        failFirst[url.pathname] = left - 1;
        res.writeHead(500).end('try again');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { base, received, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

let h: Harness;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
beforeAll(async () => {
  receiver = await startReceiver({ '/meta': 1 });
  h = await startHarness({
    workers: true,
    env: {
      PUBLIC_URL: 'https://flowpost.test',
      TELEGRAM_CHAT_RATE_LIMIT: '0',
      OUTBOUND_ALLOW_CIDRS: '127.0.0.0/8',
      OUTBOUND_RETRY_SCHEDULE: '0,0.2,0.2',
    },
  });
});
afterAll(async () => {
  await h?.close();
  await receiver?.close();
});

describe('the affiliate loop', () => {
  it('campaign link → 302 → /start c_… → offer with the clickid → lead, sale → onConversion step → trackers and Meta get each once', async () => {
    const bot = await createScriptedBot(h, {
      start: 'offer',
      steps: [
        {
          key: 'offer',
          type: 'send_message',
          text: 'https://partner.com/signup?sub1={{tracker.clickid}}&ad={{tracker.ad_name}}',
        },
        {
          key: 'thanks',
          type: 'send_message',
          text: 'thanks for the {{conversion.event}} of {{conversion.payout}} {{conversion.currency}}',
        },
      ],
      onConversion: [{ status: 'sale', next: 'thanks', addTags: ['buyer'] }],
    });
    const campaign = await h.api('POST', `/api/v1/bots/${bot.botId}/campaigns`, {
      name: 'spring',
      params: ['ad_name'],
    });
    expect(campaign.status, JSON.stringify(campaign.body)).toBe(201);
    const destinations = [
      {
        name: 'keitaro',
        on: ['conversion'],
        url: `${receiver.base}/keitaro/postback?subid={clickid}&status={status}&payout={payout}&tid={tid}`,
      },
      {
        name: 'binom',
        on: ['conversion'],
        url: `${receiver.base}/binom/click.php?cnv_id={clickid}&payout={payout}&cnv_status={status}`,
      },
      {
        name: 'voluum',
        on: ['conversion'],
        statuses: ['sale'],
        url: `${receiver.base}/voluum/postback?cid={clickid}&payout={payout}&txid={tid}`,
      },
      {
        name: 'meta',
        on: ['conversion'],
        statuses: ['sale'],
        method: 'POST',
        url: `${receiver.base}/meta`,
        headers: { 'content-type': 'application/json' },
        body: '{"data":[{"event_name":"Purchase","event_time":{eventTime},"event_id":"{eventKey}","action_source":"chat","user_data":{"fbc":"{click.fbc}","client_ip_address":"{click.ip}","client_user_agent":"{click.user_agent}"},"custom_data":{"value":"{payout}","currency":"{currency}"}}]}',
      },
      { name: 'claims', on: ['click.claimed'], url: `${receiver.base}/claimed?clickid={clickid}&campaign={campaign}` },
    ];
    for (const destination of destinations) {
      const res = await h.api('POST', `/api/v1/bots/${bot.botId}/destinations`, destination);
      expect(res.status, JSON.stringify(res.body)).toBe(201);
    }

    // The visitor clicks the ad: the campaign link records the click and opens the bot.
    const click = await fetch(`${h.baseUrl}/c/${campaign.body.id}?ad_name=test&clickid=loop-1&fbclid=AbC123`, {
      redirect: 'manual',
      headers: { 'user-agent': 'Mozilla/5.0 (iPhone)', 'x-forwarded-for': '203.0.113.5' },
    });
    expect(click.status).toBe(302);
    const payload = new URL(click.headers.get('location')!).searchParams.get('start')!;
    expect(payload).toMatch(/^c_[A-Za-z0-9]{16}$/);

    const chatId = 630_001;
    await sendUpdate(h, bot, fakeUpdates.start(chatId, payload));
    expect(await waitForMessages(h, bot, chatId, 1)).toEqual(['https://partner.com/signup?sub1=loop-1&ad=test']);

    const conversion = bot.postbackUrl.replace(/updateDialog$/, 'conversion');
    expect((await fetch(`${conversion}?subid=loop-1&status=lead`)).status).toBe(202);
    await waitFor(async () => (await dialogOf(h, bot, chatId))?.conversions[0]?.status === 'lead');
    expect((await fetch(`${conversion}?subid=loop-1&status=sale&payout=30&currency=EUR`)).status).toBe(202);
    expect(await waitForMessages(h, bot, chatId, 2)).toEqual([
      'https://partner.com/signup?sub1=loop-1&ad=test',
      'thanks for the default of 30 EUR',
    ]);
    // A network's retry of the same sale changes nothing and sends nothing again.
    expect((await fetch(`${conversion}?subid=loop-1&status=sale&payout=30&currency=EUR`)).status).toBe(200);

    const of = (path: string) => receiver.received.filter((r) => r.path === path);
    await waitFor(
      async () =>
        of('/meta').length === 2 && of('/voluum/postback').length === 1 && of('/binom/click.php').length === 2,
    );
    expect(of('/claimed').map((r) => Object.fromEntries(r.query))).toEqual([{ clickid: 'loop-1', campaign: 'spring' }]);
    expect(of('/keitaro/postback').map((r) => Object.fromEntries(r.query))).toEqual([
      { subid: 'loop-1', status: 'lead', payout: '', tid: '' },
      { subid: 'loop-1', status: 'sale', payout: '30', tid: '' },
    ]);
    expect(of('/binom/click.php').map((r) => r.query.get('cnv_status'))).toEqual(['lead', 'sale']);
    expect(of('/voluum/postback').map((r) => Object.fromEntries(r.query))).toEqual([
      { cid: 'loop-1', payout: '30', txid: '' },
    ]);

    // Meta: the first attempt failed (500) and was retried with the same event_id.
    const [first, retry] = of('/meta').map((r) => JSON.parse(r.body) as { data: Array<Record<string, any>> });
    expect(first).toEqual(retry);
    const event = first!.data[0]!;
    expect(event.event_name).toBe('Purchase');
    expect(event.event_id).toMatch(/^[0-9a-f-]{36}-sale$/);
    expect(Math.abs(event.event_time - Date.now() / 1000)).toBeLessThan(120);
    expect(event.user_data).toEqual({
      fbc: expect.stringMatching(/^fb\.1\.\d{13}\.AbC123$/),
      client_ip_address: '203.0.113.5',
      client_user_agent: 'Mozilla/5.0 (iPhone)',
    });
    expect(event.custom_data).toEqual({ value: '30', currency: 'EUR' });

    // The same link opened again by the same user: the click is the chat's already, not claimed again.
    await sendUpdate(h, bot, fakeUpdates.start(chatId, payload));
    await waitForMessages(h, bot, chatId, 3);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(of('/claimed')).toHaveLength(1);

    const dialog = await dialogOf(h, bot, chatId);
    expect(dialog.tags).toEqual(['buyer']);
    expect(dialog.tracker).toMatchObject({ clickid: 'loop-1', ad_name: 'test', campaign: 'spring' });
    const stats = await h.api('GET', `/api/v1/bots/${bot.botId}/campaigns/${campaign.body.id}/stats`);
    expect(stats.body).toEqual({ clicks: 1, starts: 1, conversions: { sale: 1 }, payouts: { EUR: '30' } });
  });

  it('refuses a destination that is not http(s), points at a refused address, or has a broken template', async () => {
    const bot = await createScriptedBot(h, { start: 'a', steps: [{ key: 'a', type: 'send_message', text: 'a' }] });
    const create = (body: Record<string, unknown>) =>
      h.api('POST', `/api/v1/bots/${bot.botId}/destinations`, { name: 'x', on: ['conversion'], ...body });
    const cases: Array<[Record<string, unknown>, string, string]> = [
      [{ url: 'ftp://tracker.example/x' }, 'invalid_url', 'url'],
      [{ url: 'not a url' }, 'invalid_url', 'url'],
      [{ url: 'http://10.0.0.8/postback?subid={clickid}' }, 'refused_target', 'url'],
      [{ url: 'http://[::1]/x' }, 'refused_target', 'url'],
      [{ url: 'https://t.example/x?a={{#each}}' }, 'invalid_template', 'url'],
      [{ url: 'https://t.example/x', on: ['nothing'] }, 'invalid_body', 'on.0'],
    ];
    for (const [body, code, param] of cases) {
      const res = await create(body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error, JSON.stringify(body)).toMatchObject({ code, param });
    }
    const ok = await create({ url: 'https://tracker.example/postback?subid={clickid}' });
    expect(ok.status).toBe(201);
    const patched = await h.api('PATCH', `/api/v1/bots/${bot.botId}/destinations/${ok.body.id}`, {
      statuses: ['sale'],
    });
    expect(patched.body.statuses).toEqual(['sale']);
    expect((await h.api('GET', `/api/v1/bots/${bot.botId}/destinations`)).body.destinations).toHaveLength(1);
    expect((await h.api('DELETE', `/api/v1/bots/${bot.botId}/destinations/${ok.body.id}`)).status).toBe(204);
    expect((await h.api('GET', `/api/v1/bots/${bot.botId}/destinations/${ok.body.id}`)).status).toBe(404);
  });
});
