import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QUEUES } from '../../src/jobs/queue-names.js';
import { MAX_DIALOG_TAGS, MAX_DIALOG_TRACKER_FIELDS, MAX_POSTBACK_PARAMS } from '../../src/domain/limits.js';
import { createScriptedBot, dialogOf, sendUpdate, type TestBot } from '../support/bot-scripts.js';
import { fakeUpdates } from '../support/fake-telegram.js';
import { REDIS_URL, createBotWithEndpoint, startHarness, waitFor, type Harness } from '../support/harness.js';
import { answer, startTarget, type Target } from '../support/outbound-target.js';

let h: Harness;
let target: Target;
let chat = 910_000;
const nextChat = () => chat++;

beforeAll(async () => {
  h = await startHarness({
    workers: true,
    env: { OUTBOUND_ALLOW_CIDRS: '127.0.0.0/8', TELEGRAM_CHAT_RATE_LIMIT: '0' },
  });
  target = await startTarget(answer(200));
});
afterAll(async () => {
  await target?.close();
  await h?.close();
});

const postJson = (url: string, body: unknown) =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

async function answerOf(response: Response): Promise<{ status: number; body: any }> {
  return { status: response.status, body: await response.json() };
}

describe('a Send Webhook step fed bad values by a real dialog', () => {
  it('sends a non-Latin-1 name percent-encoded, keeps a line break from adding a header, and calls the path a ".." value names', async () => {
    const bot = await createScriptedBot(h, {
      start: 'hook',
      steps: [
        {
          key: 'hook',
          type: 'send_webhook',
          method: 'GET',
          url: `${target.url}/leads/{{fields.id}}/convert?chat={chatId}`,
          headers: { 'X-Name': '{{name}}', 'X-Note': '{{fields.note}}' },
        },
      ],
    });
    const chatId = nextChat();
    const set = await postJson(bot.postbackUrl, { chatId, fields: { id: '..', note: 'a\r\nX-Evil: 1' } });
    expect(set.status).toBe(202);
    await waitFor(async () => (await dialogOf(h, bot, chatId))?.fields.id === '..', 10_000, 'fields set');
    await sendUpdate(h, bot, fakeUpdates.start(chatId, undefined, fakeUpdates.user(chatId, { first_name: 'Иван' })));

    const request = await waitFor(async () => target.requests.find((r) => r.url.endsWith(`chat=${chatId}`)));
    expect(request.url).toBe(`/leads/%2E%2E/convert?chat=${chatId}`);
    expect(request.headers['x-name']).toBe('%D0%98%D0%B2%D0%B0%D0%BD%20User');
    expect(decodeURIComponent(String(request.headers['x-name']))).toBe('Иван User');
    expect(request.headers['x-note']).toBe('a X-Evil: 1');
    expect(request.headers['x-evil']).toBeUndefined();
    const delivery = await waitFor(async () => {
      const row = await h.db('deliveries').where({ bot_id: bot.botId }).first();
      return row?.state === 'succeeded' ? row : null;
    });
    expect(delivery.url).toBe(`${target.url}/leads/%2E%2E/convert?chat=${chatId}`);
  });
});

describe('text Postgres cannot store, sent to the management API', () => {
  let bot: TestBot;
  beforeAll(async () => {
    bot = await createScriptedBot(h, { start: 'a', steps: [{ key: 'a', type: 'send_message', text: 'hi' }] });
  });

  const refused = (res: { status: number; body: any }, param: string, problem = 'must not contain U+0000') => {
    expect(res.status, JSON.stringify(res.body)).toBe(400);
    expect(res.body).toEqual({
      ok: false,
      error: { code: 'invalid_body', message: `${param}: ${problem}`, param },
    });
  };

  it('is answered 400 naming the field, for every kind of name', async () => {
    const base = `/api/v1/bots/${bot.botId}`;
    refused(await h.api('POST', '/api/v1/bots', { name: 'a\u0000b' }), 'name');
    refused(await h.api('PATCH', base, { name: 'a\u0000b' }), 'name');
    refused(await h.api('POST', `${base}/webhooks`, { name: 'x\u0000' }), 'name');
    refused(await h.api('PUT', `${base}/fields/plan`, { name: 'Plan\u0000', type: 'text' }), 'name');
    refused(
      await h.api('PUT', `${base}/fields/plan`, { name: 'Plan', type: 'select', options: ['a', 'b\u0000'] }),
      'options.1',
    );
    refused(await h.api('POST', `${base}/campaigns`, { name: 'spring\u0000' }), 'name');
    refused(
      await h.api('POST', `${base}/campaigns`, { name: 'spring', fields: { source: 'f\u0000b' } }),
      'fields.source',
    );
    refused(
      await h.api('POST', `${base}/destinations`, { name: 'k\u0000', on: ['conversion'], url: 'https://t.example/' }),
      'name',
    );
    refused(
      await h.api('PUT', `${base}/script`, {
        start: 'a',
        steps: [{ key: 'a', type: 'set_fields', fields: { plan: 'gold\u0000' } }],
      }),
      'steps.0.fields.plan',
    );
    refused(
      await h.api('POST', '/api/v1/bots', { name: 'half \ud800 pair' }),
      'name',
      'is not valid Unicode (an unpaired surrogate)',
    );
    // Nothing of it was stored.
    expect(await h.db('bots').whereRaw(`name like '%' || chr(65533) || '%'`).first()).toBeUndefined();
  });
});

describe('postback caps', () => {
  let url: string;
  let conversionUrl: string;
  beforeAll(async () => {
    ({ url } = await createBotWithEndpoint(h));
    conversionUrl = url.replace(/updateDialog$/, 'conversion');
  });

  const query = (n: number) => Array.from({ length: n }, (_, i) => `k${i}=v`).join('&');

  it(`more than ${MAX_POSTBACK_PARAMS} parameters is 413 naming the limit, on updateDialog and conversion`, async () => {
    const over = await answerOf(await fetch(`${url}?chatId=${nextChat()}&${query(MAX_POSTBACK_PARAMS)}`));
    expect(over.status).toBe(413);
    expect(over.body.error).toMatchObject({ code: 'too_many_params', limit: MAX_POSTBACK_PARAMS });
    expect(over.body.error.message).toContain(`at most ${MAX_POSTBACK_PARAMS}`);
    const json = await answerOf(
      await postJson(url, {
        chatId: nextChat(),
        fields: Object.fromEntries(Array.from({ length: 150 }, (_, i) => [`f${i}`, 1])),
        tracker: Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`t${i}`, 'x'])),
      }),
    );
    expect(json.status).toBe(413);
    const conversion = await answerOf(await fetch(`${conversionUrl}?clickid=c1&${query(MAX_POSTBACK_PARAMS)}`));
    expect(conversion.status).toBe(413);
    expect(conversion.body.error.code).toBe('too_many_params');
    expect((await fetch(`${url}?chatId=${nextChat()}&${query(MAX_POSTBACK_PARAMS - 1)}`)).status).toBe(202);
  });

  it(`a request adding more than ${MAX_DIALOG_TAGS} tags is 422 naming the limit`, async () => {
    const tags = Array.from({ length: MAX_DIALOG_TAGS + 1 }, (_, i) => `t${i}`).join(',');
    const res = await answerOf(await postJson(url, { chatId: nextChat(), tags }));
    expect(res.status).toBe(422);
    expect(res.body.error).toMatchObject({ code: 'too_many_tags', param: 'tags', limit: MAX_DIALOG_TAGS });
    expect(res.body.error.message).toContain(`at most ${MAX_DIALOG_TAGS} tags`);
  });

  it('U+0000 in a tag or a field value is refused at the web tier, on both endpoints', async () => {
    const tag = await answerOf(await fetch(`${url}?chatId=${nextChat()}&tags=a%00b`));
    expect(tag.status).toBe(400);
    expect(tag.body.error.message).toBe('tags must not contain U+0000');
    const field = await answerOf(await fetch(`${conversionUrl}?clickid=c1&fields.x=a%00b`));
    expect(field.status).toBe(400);
    expect(field.body.error.message).toBe('fields.x must not contain U+0000');
  });

  it('updates that would push a dialog past its tracker field limit leave the excess out; the jobs succeed', async () => {
    const chatId = nextChat();
    const tracker = (prefix: string, n: number, value: string) =>
      Object.fromEntries(Array.from({ length: n }, (_, i) => [`${prefix}${i}`, value]));
    expect((await postJson(url, { chatId, tracker: tracker('a', 150, 'first') })).status).toBe(202);
    expect((await postJson(url, { chatId, tracker: { ...tracker('b', 150, 'second'), a0: 'second' } })).status).toBe(
      202,
    );
    const dialog = await waitFor(
      async () => {
        const row = await h.db('dialogs').where({ chat_id: chatId }).first();
        return row?.tracker.a0 === 'second' ? row : null;
      },
      10_000,
      'the second update',
    );
    expect(Object.keys(dialog.tracker)).toHaveLength(MAX_DIALOG_TRACKER_FIELDS);
    const queue = new Queue(QUEUES.dialogUpdates, { connection: { url: REDIS_URL }, prefix: h.config.queuePrefix });
    try {
      expect(await queue.getJobCounts('failed')).toEqual({ failed: 0 });
    } finally {
      await queue.close();
    }
  });
});
