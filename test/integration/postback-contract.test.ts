/**
 * API.md §1, the postback endpoint, against the real web tier and worker (Postgres + Redis).
 *
 * Every response is checked for the documented JSON shape by `send` (2xx `{ok,updateId}`, a duplicate
 * `{ok,duplicate,updateId}`, errors `{ok:false,error:{code,message,param?}}`). "Nothing was queued" is
 * proven two ways: the updateId (the BullMQ job id, one counter per queue) of the accepted update sent
 * right after a refusal is exactly one more than the one sent right before it, and the dialog, once
 * that later update is applied, is unchanged apart from it.
 */
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/config/log.js';
import { startWebTier } from '../../src/http/server.js';
import {
  createBotWithEndpoint,
  expectApiError,
  startHarness,
  testConfig,
  waitFor,
  type Harness,
} from '../support/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ workers: true });
});
afterAll(async () => {
  await h?.close();
});

// ---------------------------------------------------------------------------------------------
// helpers

interface Reply {
  status: number;
  body: any;
  headers: Headers;
}

interface Target {
  botId: string;
  endpointId: string;
  url: string;
}

const ERROR_KEYS = ['code', 'message', 'param'];

/** Checks a postback answer against the documented shapes; throws with a readable message otherwise. */
function checkShape(reply: Reply): void {
  const what = `${reply.status} ${JSON.stringify(reply.body)}`;
  if (reply.status === 202) {
    expect(reply.body, what).toEqual({ ok: true, updateId: expect.stringMatching(/^\d+$/) });
  } else if (reply.status === 200) {
    expect(reply.body, what).toEqual({ ok: true, duplicate: true, updateId: expect.stringMatching(/^\d+$/) });
  } else {
    expect(reply.status, what).toBeGreaterThanOrEqual(400);
    expect(Object.keys(reply.body ?? {}).sort(), what).toEqual(['error', 'ok']);
    expect(reply.body.ok, what).toBe(false);
    const error = reply.body.error;
    expect(typeof error, what).toBe('object');
    expect(error.code, what).toMatch(/^[a-z_]+$/);
    expect(typeof error.message, what).toBe('string');
    expect(error.message.length, what).toBeGreaterThan(0);
    for (const key of Object.keys(error)) expect(ERROR_KEYS, `${what}: unexpected error key ${key}`).toContain(key);
    if ('param' in error) expect(typeof error.param, what).toBe('string');
  }
}

/** Sends a request; the answer must be JSON of a documented shape. */
async function send(url: string, init?: RequestInit): Promise<Reply> {
  const res = await fetch(url, init);
  const text = await res.text();
  expect(res.headers.get('content-type') ?? '', `content type of ${res.status} ${text.slice(0, 200)}`).toMatch(
    /^application\/json\b/,
  );
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error(`not JSON: ${res.status} ${text.slice(0, 200)}`);
  }
  const reply = { status: res.status, body, headers: res.headers };
  checkShape(reply);
  return reply;
}

type Params = string | Record<string, string> | Array<[string, string]>;

function qs(params: Params): string {
  return typeof params === 'string' ? params : new URLSearchParams(params).toString();
}

function get(url: string, params: Params, headers: Record<string, string> = {}): Promise<Reply> {
  return send(`${url}?${qs(params)}`, { headers });
}

function withQuery(url: string, query: Params): string {
  const text = qs(query);
  return text ? `${url}?${text}` : url;
}

function postForm(
  url: string,
  body: Params | Uint8Array,
  query: Params = '',
  contentType = 'application/x-www-form-urlencoded',
): Promise<Reply> {
  return send(withQuery(url, query), {
    method: 'POST',
    headers: { 'content-type': contentType },
    body: body instanceof Uint8Array ? (body as unknown as BodyInit) : qs(body),
  });
}

/** POSTs JSON: a string is sent as is (raw JSON text), anything else through JSON.stringify. */
function postJson(
  url: string,
  body: unknown,
  query: Params = '',
  headers: Record<string, string> = {},
): Promise<Reply> {
  return send(withQuery(url, query), {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

/** A request written byte for byte (raw bytes in the request target, no fetch normalisation). */
function rawRequest(
  port: number,
  method: string,
  target: string,
  headers: Record<string, string> = {},
  body?: Buffer,
): Promise<{ status: number; text: string; contentType: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: target, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        resolve({
          status: res.statusCode!,
          text: Buffer.concat(chunks).toString(),
          contentType: res.headers['content-type'],
        }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}

function accepted(reply: Reply): number {
  expect(reply.status, JSON.stringify(reply.body)).toBe(202);
  return Number(reply.body.updateId);
}

async function fresh(rateLimit?: number): Promise<Target> {
  return createBotWithEndpoint(h, rateLimit);
}

async function addWebhook(botId: string, body: Record<string, unknown> = { name: 'another' }): Promise<Target> {
  const res = await h.api('POST', `/api/v1/bots/${botId}/webhooks`, body);
  expect(res.status).toBe(201);
  expect(res.body.url).toMatch(new RegExp(`/api/bots/webhooks/${res.body.id}/updateDialog$`));
  return { botId, endpointId: res.body.id, url: `${h.baseUrl}/api/bots/webhooks/${res.body.id}/updateDialog` };
}

async function uploadSteps(botId: string, keys: string[]): Promise<Map<string, string>> {
  const res = await h.api('PUT', `/api/v1/bots/${botId}/script`, {
    start: keys[0],
    steps: keys.map((key) => ({ key, type: 'send_message', text: `step ${key}` })),
  });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return new Map(res.body.steps.map((s: { key: string; id: string }) => [s.key, s.id]));
}

async function defineField(botId: string, key: string, definition: Record<string, unknown>): Promise<void> {
  const res = await h.api('PUT', `/api/v1/bots/${botId}/fields/${key}`, definition);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
}

async function dialog(botId: string, chatId: number | string): Promise<any> {
  const res = await h.api('GET', `/api/v1/bots/${botId}/dialogs/${chatId}`);
  if (res.status === 404) return null;
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body;
}

async function waitForDialog(
  botId: string,
  chatId: number | string,
  check: (d: any) => boolean,
  what = 'the dialog',
): Promise<any> {
  return waitFor(
    async () => {
      const found = await dialog(botId, chatId);
      return found && check(found) ? found : null;
    },
    10_000,
    what,
  );
}

let markers = 0;

/** Sends an accepted update with a fresh marker and waits until the worker applied it. */
async function settle(t: Target, chatId: number): Promise<{ updateId: number; dialog: any }> {
  const marker = `m${++markers}`;
  const updateId = accepted(await get(t.url, { chatId: String(chatId), marker }));
  const applied = await waitForDialog(t.botId, chatId, (d) => d.fields.marker === marker, `marker ${marker}`);
  return { updateId, dialog: applied };
}

function withoutMarker(d: any): any {
  const { marker: _marker, ...fields } = d.fields;
  return { ...d, fields };
}

/**
 * Runs `refuse` between two accepted marker updates of one dialog and proves the refused request
 * queued nothing: the updateIds are consecutive (plus `extraQueued` accepted on purpose inside
 * `refuse`) and the dialog is unchanged apart from the marker.
 */
async function expectNothingQueued(
  t: Target,
  chatId: number,
  refuse: () => Promise<void>,
  extraQueued = 0,
): Promise<any> {
  const before = await settle(t, chatId);
  await refuse();
  const after = await settle(t, chatId);
  expect(after.updateId, 'an update was queued in between').toBe(before.updateId + 1 + extraQueued);
  expect(withoutMarker(after.dialog)).toEqual(withoutMarker(before.dialog));
  return after.dialog;
}

function sorted(values: string[]): string[] {
  return [...values].sort();
}

// ---------------------------------------------------------------------------------------------

describe('GET and POST; query, form and JSON', () => {
  it('GET: the query string is queued (202 {ok,updateId}) and applied', async () => {
    const t = await fresh();
    accepted(await get(t.url, 'chatId=1001&refID=12345&userBalance=5000'));
    const d = await waitForDialog(t.botId, 1001, (x) => x.fields.userBalance === '5000');
    expect(d.fields).toEqual({ refID: '12345', userBalance: '5000' });
    expect(d.chatId).toBe(1001);
  });

  it('POST with the parameters in the query string only', async () => {
    const t = await fresh();
    accepted(await send(`${t.url}?chatId=1002&refID=q`, { method: 'POST' }));
    const d = await waitForDialog(t.botId, 1002, (x) => x.fields.refID === 'q');
    expect(d.fields).toEqual({ refID: 'q' });
  });

  it('POST application/x-www-form-urlencoded', async () => {
    const t = await fresh();
    accepted(await postForm(t.url, 'chatId=1003&refID=abc&status=manual&tags=x,y&note=hello+world%21'));
    const d = await waitForDialog(t.botId, 1003, (x) => x.fields.refID === 'abc');
    expect(d.fields).toEqual({ refID: 'abc', note: 'hello world!' });
    expect(d.status).toBe('manual');
    expect(sorted(d.tags)).toEqual(['x', 'y']);
    // with a charset parameter
    accepted(await postForm(t.url, 'chatId=1003&refID=def', '', 'application/x-www-form-urlencoded; charset=UTF-8'));
    await waitForDialog(t.botId, 1003, (x) => x.fields.refID === 'def');
  });

  it('POST application/json', async () => {
    const t = await fresh();
    accepted(await postJson(t.url, { chatId: 1004, refID: 'abc', status: 'blocked', tags: ['x', 'y'] }));
    const d = await waitForDialog(t.botId, 1004, (x) => x.fields.refID === 'abc');
    expect(d.fields).toEqual({ refID: 'abc' });
    expect(d.status).toBe('blocked');
    expect(sorted(d.tags)).toEqual(['x', 'y']);
    accepted(
      await send(t.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json; charset=utf-8' },
        body: JSON.stringify({ chatId: 1004, refID: 'def' }),
      }),
    );
    await waitForDialog(t.botId, 1004, (x) => x.fields.refID === 'def');
  });

  it('query + form body: a body value wins over a query value of the same name; the rest of both applies', async () => {
    const t = await fresh();
    accepted(
      await postForm(
        t.url,
        'refID=body&fromBody=2&status=manual',
        'chatId=1005&refID=query&fromQuery=1&status=blocked',
      ),
    );
    const d = await waitForDialog(t.botId, 1005, (x) => x.fields.fromBody === '2');
    expect(d.fields).toEqual({ refID: 'body', fromQuery: '1', fromBody: '2' });
    expect(d.status).toBe('manual');
  });

  it('query + JSON body: a body value wins, chatId included', async () => {
    const t = await fresh();
    accepted(
      await postJson(
        t.url,
        { chatId: 1007, refID: 'body', status: 'manual' },
        'chatId=1006&refID=query&status=blocked&fromQuery=1',
      ),
    );
    const d = await waitForDialog(t.botId, 1007, (x) => x.fields.refID === 'body');
    expect(d.fields).toEqual({ refID: 'body', fromQuery: '1' });
    expect(d.status).toBe('manual');
    await settle(t, 1007);
    expect(await dialog(t.botId, 1006)).toBeNull();
  });
});

describe('chatId', () => {
  it('chatId and its alias chat_id, in the query, a form and JSON (number or string)', async () => {
    const t = await fresh();
    accepted(await get(t.url, 'chatId=2001&via=get-chatId'));
    accepted(await get(t.url, 'chat_id=2002&via=get-chat_id'));
    accepted(await postForm(t.url, 'chat_id=2003&via=form-chat_id'));
    accepted(await postJson(t.url, { chat_id: 2004, via: 'json-chat_id' }));
    accepted(await postJson(t.url, { chatId: 2005, via: 'json-number' }));
    accepted(await postJson(t.url, { chatId: '2006', via: 'json-string' }));
    const expected: Array<[number, string]> = [
      [2001, 'get-chatId'],
      [2002, 'get-chat_id'],
      [2003, 'form-chat_id'],
      [2004, 'json-chat_id'],
      [2005, 'json-number'],
      [2006, 'json-string'],
    ];
    for (const [chatId, via] of expected) {
      const d = await waitForDialog(t.botId, chatId, (x) => x.fields.via === via, `dialog ${chatId}`);
      expect(d.chatId).toBe(chatId);
      expect(d.fields).toEqual({ via });
    }
  });

  it('negative (group) chat ids', async () => {
    const t = await fresh();
    accepted(await get(t.url, 'chatId=-1001234567890&group=yes'));
    accepted(await postJson(t.url, { chatId: -42, group: 'small' }));
    const d = await waitForDialog(t.botId, -1001234567890, (x) => x.fields.group === 'yes');
    expect(d.chatId).toBe(-1001234567890);
    const small = await waitForDialog(t.botId, -42, (x) => x.fields.group === 'small');
    expect(small.chatId).toBe(-42);
    expect(await dialog(t.botId, 1001234567890)).toBeNull();
  });

  it('|chatId| ≤ 2^53−1: ±9007199254740991 accepted, ±9007199254740992 refused (query and JSON)', async () => {
    const t = await fresh();
    accepted(await get(t.url, 'chatId=9007199254740991&edge=max'));
    accepted(await postJson(t.url, { chatId: -9007199254740991, edge: 'min' }));
    expect((await waitForDialog(t.botId, '9007199254740991', (x) => x.fields.edge === 'max')).chatId).toBe(
      9007199254740991,
    );
    expect((await waitForDialog(t.botId, '-9007199254740991', (x) => x.fields.edge === 'min')).chatId).toBe(
      -9007199254740991,
    );

    await expectNothingQueued(t, 2010, async () => {
      for (const value of [
        '9007199254740992',
        '-9007199254740992',
        '9007199254740993',
        '99999999999999999',
        '12345678901234567890',
      ]) {
        expectApiError(await get(t.url, { chatId: value, leak: value }), 400, 'invalid_chat_id', 'chatId');
      }
      expectApiError(await postJson(t.url, '{"chatId":9007199254740992,"leak":"1"}'), 400, 'invalid_chat_id', 'chatId');
      expectApiError(
        await postJson(t.url, '{"chatId":-9007199254740992,"leak":"1"}'),
        400,
        'invalid_chat_id',
        'chatId',
      );
      expectApiError(await postJson(t.url, '{"chatId":1e21,"leak":"1"}'), 400, 'invalid_chat_id', 'chatId');
    });
    const max = await dialog(t.botId, '9007199254740991');
    expect(max.fields).toEqual({ edge: 'max' });
  });

  it('a missing chatId → 400 missing_chat_id', async () => {
    const t = await fresh();
    await expectNothingQueued(t, 2020, async () => {
      expectApiError(await send(t.url), 400, 'missing_chat_id', 'chatId');
      expectApiError(await get(t.url, 'refID=1'), 400, 'missing_chat_id', 'chatId');
      expectApiError(await get(t.url, 'chatId=&refID=1'), 400, 'missing_chat_id', 'chatId');
      expectApiError(await get(t.url, 'chat_id=&refID=1'), 400, 'missing_chat_id', 'chatId');
      expectApiError(await postForm(t.url, 'refID=1'), 400, 'missing_chat_id', 'chatId');
      expectApiError(await postJson(t.url, { refID: '1' }), 400, 'missing_chat_id', 'chatId');
      expectApiError(await postJson(t.url, { chatId: null, refID: '1' }), 400, 'missing_chat_id', 'chatId');
      expectApiError(await send(t.url, { method: 'POST' }), 400, 'missing_chat_id', 'chatId');
    });
  });

  it('abc, 1.5, 0 and other non-integers → 400 invalid_chat_id naming chatId', async () => {
    const t = await fresh();
    await expectNothingQueued(t, 2030, async () => {
      for (const value of [
        'abc',
        '1.5',
        '0',
        '-0',
        '00',
        '1e3',
        '0x10',
        '+5',
        '12abc',
        '--1',
        '1,000',
        '1 2',
        '١٢٣',
        'Infinity',
        'NaN',
        '-',
      ]) {
        expectApiError(await get(t.url, { chatId: value, leak: '1' }), 400, 'invalid_chat_id', 'chatId');
      }
      expectApiError(await get(t.url, 'chat_id=abc&leak=1'), 400, 'invalid_chat_id', 'chatId');
      // chatId is read before its alias: a bad chatId is refused even with a good chat_id beside it
      expectApiError(await get(t.url, 'chatId=abc&chat_id=2030&leak=1'), 400, 'invalid_chat_id', 'chatId');
      expectApiError(await postForm(t.url, 'chatId=1.5&leak=1'), 400, 'invalid_chat_id', 'chatId');
      for (const raw of ['1.5', '0', '-0', 'true', '"abc"', '["2030"]', '""']) {
        const reply = await postJson(t.url, `{"chatId":${raw},"leak":"1"}`);
        expect(reply.status, raw).toBe(400);
        // "" is a missing chatId; everything else an invalid one
        expect(reply.body.error.code, raw).toBe(raw === '""' ? 'missing_chat_id' : 'invalid_chat_id');
        expect(reply.body.error.param, raw).toBe('chatId');
      }
    });
  });
});

describe('stepId', () => {
  it('moves the dialog to a step named by its id (UUID) or its key, also as step_id', async () => {
    const t = await fresh();
    const steps = await uploadSteps(t.botId, ['welcome', 'offer', 'vip']);
    const offer = steps.get('offer')!;
    const vip = steps.get('vip')!;
    expect(offer).toMatch(/^[0-9a-f-]{36}$/);

    accepted(await get(t.url, { chatId: '3001', stepId: offer }));
    accepted(await get(t.url, { chatId: '3002', stepId: 'vip' }));
    accepted(await get(t.url, { chatId: '3003', step_id: 'offer' }));
    accepted(await postJson(t.url, { chatId: 3004, step_id: vip }));
    accepted(await postForm(t.url, { chatId: '3005', stepId: 'welcome' }));
    const expected: Array<[number, string]> = [
      [3001, 'offer'],
      [3002, 'vip'],
      [3003, 'offer'],
      [3004, 'vip'],
      [3005, 'welcome'],
    ];
    for (const [chatId, key] of expected) {
      const d = await waitForDialog(t.botId, chatId, (x) => x.stepKey === key, `dialog ${chatId} at ${key}`);
      expect(d.stepId).toBe(steps.get(key));
    }
  });

  it('an unknown step → 422 unknown_step naming stepId; nothing queued', async () => {
    const t = await fresh();
    const other = await fresh();
    const otherSteps = await uploadSteps(other.botId, ['elsewhere']);
    // a bot without a script knows no step at all
    expectApiError(await get(t.url, 'chatId=3010&stepId=welcome'), 422, 'unknown_step', 'stepId');

    await uploadSteps(t.botId, ['welcome', 'offer']);
    await expectNothingQueued(t, 3011, async () => {
      expectApiError(await get(t.url, 'chatId=3011&stepId=nope&leak=1'), 422, 'unknown_step', 'stepId');
      expectApiError(
        await get(t.url, { chatId: '3011', stepId: randomUUID(), leak: '1' }),
        422,
        'unknown_step',
        'stepId',
      );
      expectApiError(await get(t.url, 'chatId=3011&step_id=nope&leak=1'), 422, 'unknown_step', 'stepId');
      expectApiError(await postJson(t.url, { chatId: 3011, stepId: 'nope', leak: '1' }), 422, 'unknown_step', 'stepId');
      // another bot's step is unknown here, by id and by key
      expectApiError(
        await get(t.url, { chatId: '3011', stepId: otherSteps.get('elsewhere')!, leak: '1' }),
        422,
        'unknown_step',
        'stepId',
      );
      expectApiError(await get(t.url, 'chatId=3011&stepId=elsewhere&leak=1'), 422, 'unknown_step', 'stepId');
    });
    expect(await dialog(t.botId, 3010)).toBeNull();
  });
});

describe('status', () => {
  it('auto, manual and blocked, case-insensitively', async () => {
    const t = await fresh();
    accepted(await get(t.url, 'chatId=4001&status=MANUAL'));
    accepted(await get(t.url, 'chatId=4002&status=Blocked'));
    accepted(await postJson(t.url, { chatId: 4003, status: 'mAnUaL' }));
    expect((await waitForDialog(t.botId, 4001, (x) => x.status === 'manual')).status).toBe('manual');
    expect((await waitForDialog(t.botId, 4002, (x) => x.status === 'blocked')).status).toBe('blocked');
    expect((await waitForDialog(t.botId, 4003, (x) => x.status === 'manual')).status).toBe('manual');
    accepted(await postForm(t.url, 'chatId=4001&status=AUTO'));
    await waitForDialog(t.botId, 4001, (x) => x.status === 'auto', 'back to auto');
  });

  it('any other status → 400 invalid_status naming status; nothing queued', async () => {
    const t = await fresh();
    accepted(await get(t.url, 'chatId=4010&status=manual'));
    await waitForDialog(t.botId, 4010, (x) => x.status === 'manual');
    const d = await expectNothingQueued(t, 4010, async () => {
      for (const value of ['paused', '', 'manual,auto', 'automatic', 'block', '1']) {
        expectApiError(await get(t.url, { chatId: '4010', status: value, leak: '1' }), 400, 'invalid_status', 'status');
      }
      for (const raw of ['1', 'null', 'true', '["auto"]', '{"a":"auto"}']) {
        const reply = await postJson(t.url, `{"chatId":4010,"status":${raw},"leak":"1"}`);
        expect(reply.status, raw).toBe(400);
        expect(reply.body.error.param, raw).toBe('status');
      }
    });
    expect(d.status).toBe('manual');
  });
});

describe('custom fields', () => {
  it('fields.KEY, details.KEY, fields[KEY] and any other name (refID, userBalance) set custom fields, as text', async () => {
    const t = await fresh();
    accepted(
      await get(
        t.url,
        'chatId=5001&fields.a=1&details.b=2&fields%5Bc%5D=3&fields[c2]=3b&details[d]=4&refID=12345&userBalance=5000&fields.x.y-z_1=dots',
      ),
    );
    const d = await waitForDialog(t.botId, 5001, (x) => x.fields.userBalance === '5000');
    expect(d.fields).toEqual({
      a: '1',
      b: '2',
      c: '3',
      c2: '3b',
      d: '4',
      refID: '12345',
      userBalance: '5000',
      'x.y-z_1': 'dots',
    });
    expect(d.tracker).toEqual({});
  });

  it('the same forms in a form body', async () => {
    const t = await fresh();
    accepted(await postForm(t.url, 'chatId=5002&fields.a=1&details.b=2&fields%5Bc%5D=3&refID=r'));
    const d = await waitForDialog(t.botId, 5002, (x) => x.fields.refID === 'r');
    expect(d.fields).toEqual({ a: '1', b: '2', c: '3', refID: 'r' });
  });

  it('JSON {"fields":{…}}, {"details":{…}} and other top-level names', async () => {
    const t = await fresh();
    accepted(
      await postJson(t.url, {
        chatId: 5003,
        fields: { a: 'x', n: 5 },
        details: { b: 'y', flag: true },
        userBalance: 5000,
      }),
    );
    const d = await waitForDialog(t.botId, 5003, (x) => x.fields.userBalance !== undefined);
    expect(d.fields).toEqual({ a: 'x', n: '5', b: 'y', flag: 'true', userBalance: '5000' });
    expect(d.tracker).toEqual({});
  });

  it('a later value replaces an earlier one; other fields stay', async () => {
    const t = await fresh();
    accepted(await get(t.url, 'chatId=5004&refID=12345&userBalance=100'));
    accepted(await get(t.url, 'chatId=5004&userBalance=5000'));
    const d = await waitForDialog(t.botId, 5004, (x) => x.fields.userBalance === '5000');
    expect(d.fields).toEqual({ refID: '12345', userBalance: '5000' });
  });
});

describe('typed custom fields', () => {
  let t: Target;
  let chat = 6000;
  beforeAll(async () => {
    t = await fresh();
    await defineField(t.botId, 'balance', { name: 'Balance', type: 'number' });
    await defineField(t.botId, 'birthday', { name: 'Birthday', type: 'date' });
    await defineField(t.botId, 'site', { name: 'Site', type: 'link' });
    await defineField(t.botId, 'plan', { name: 'Plan', type: 'select', options: ['gold', 'silver'] });
    await defineField(t.botId, 'features', { name: 'Features', type: 'multiselect', options: ['a', 'b', 'c'] });
    await defineField(t.botId, 'note', { name: 'Note', type: 'text' });
  });

  /** Sends one accepted update to a new dialog and returns the stored value of `key`. */
  async function stored(key: string, request: (chatId: number) => Promise<Reply>): Promise<unknown> {
    const chatId = ++chat;
    accepted(await request(chatId));
    const d = await waitForDialog(t.botId, chatId, (x) => Object.hasOwn(x.fields, key), `fields.${key} of ${chatId}`);
    return d.fields[key];
  }

  async function refusedAll(key: string, requests: Array<(chatId: number) => Promise<Reply>>): Promise<void> {
    const chatId = ++chat;
    await expectNothingQueued(t, chatId, async () => {
      for (const request of requests) {
        const reply = await request(chatId);
        expectApiError(reply, 422, 'invalid_field_value', `fields.${key}`);
        expect(reply.body.error.message).toContain(`fields.${key}`);
      }
    });
  }

  it('number: stored as a JSON number, in every parameter form', async () => {
    expect(await stored('balance', (c) => get(t.url, `chatId=${c}&balance=5000`))).toBe(5000);
    expect(await stored('balance', (c) => get(t.url, `chatId=${c}&fields.balance=12.5`))).toBe(12.5);
    expect(await stored('balance', (c) => get(t.url, `chatId=${c}&details[balance]=-3e2`))).toBe(-300);
    expect(await stored('balance', (c) => postJson(t.url, { chatId: c, fields: { balance: 7 } }))).toBe(7);
    expect(await stored('balance', (c) => postJson(t.url, { chatId: c, balance: ' 42 ' }))).toBe(42);
  });

  it('number: a wrong value → 422 invalid_field_value naming fields.KEY; the rest of the request is not applied', async () => {
    const bad = ['abc', '5000abc', '1e400', 'NaN', 'Infinity', '0x10', '1,5', '--1'];
    await refusedAll('balance', [
      ...bad.map(
        (value) => (c: number) => get(t.url, { chatId: String(c), fields_ok: '1', 'fields.balance': value, leak: '1' }),
      ),
      (c) => get(t.url, `chatId=${c}&leak=1&balance=abc`),
      (c) => get(t.url, `chatId=${c}&leak=1&details.balance=abc`),
      (c) => get(t.url, `chatId=${c}&leak=1&fields[balance]=abc`),
      (c) => postForm(t.url, `chatId=${c}&leak=1&balance=abc`),
      (c) => postJson(t.url, { chatId: c, leak: '1', fields: { balance: 'abc' } }),
      (c) => postJson(t.url, { chatId: c, leak: '1', details: { balance: 'abc' } }),
      (c) => postJson(t.url, { chatId: c, leak: '1', balance: true }),
    ]);
  });

  it('date: YYYY-MM-DD kept, ISO 8601 date-times stored as UTC with ms; impossible dates → 422', async () => {
    expect(await stored('birthday', (c) => get(t.url, `chatId=${c}&birthday=2024-03-10`))).toBe('2024-03-10');
    expect(
      await stored('birthday', (c) => get(t.url, { chatId: String(c), birthday: '2024-03-10T17:49:32.806Z' })),
    ).toBe('2024-03-10T17:49:32.806Z');
    expect(
      await stored('birthday', (c) => get(t.url, { chatId: String(c), birthday: '2024-03-10T20:49:32+03:00' })),
    ).toBe('2024-03-10T17:49:32.000Z');
    expect(await stored('birthday', (c) => postJson(t.url, { chatId: c, fields: { birthday: '2024-02-29' } }))).toBe(
      '2024-02-29',
    );
    await refusedAll(
      'birthday',
      [
        'tomorrow',
        '2024-13-01',
        '2023-02-29',
        '2024-02-30',
        '2024-02-30T10:00:00Z',
        '2024-04-31T00:00:00Z',
        '10.03.2024',
        '2024-03-10T25:00:00Z',
        '1710092972',
      ].map((value) => (c: number) => get(t.url, { chatId: String(c), birthday: value, leak: '1' })),
    );
  });

  it("date: a date-time without an offset does not depend on the server's time zone", async () => {
    const original = process.env.TZ;
    const value = '2024-03-10T17:49:32';
    const results: unknown[] = [];
    const local: string[] = [];
    try {
      for (const zone of ['UTC', 'Asia/Tokyo', 'America/New_York']) {
        process.env.TZ = zone;
        local.push(new Date(value).toISOString());
        results.push(await stored('birthday', (c) => get(t.url, { chatId: String(c), birthday: value })));
      }
    } finally {
      if (original === undefined) delete process.env.TZ;
      else process.env.TZ = original;
    }
    // precondition: switching TZ did change how this process reads local times
    expect(new Set(local).size).toBe(3);
    expect(new Set(results).size, JSON.stringify(results)).toBe(1);
  });

  it('link: http(s) URLs; anything else → 422', async () => {
    const url = 'https://partner.example/signup?sub1=abc&x=1';
    expect(await stored('site', (c) => get(t.url, { chatId: String(c), site: url }))).toBe(url);
    expect(await stored('site', (c) => postJson(t.url, { chatId: c, fields: { site: 'http://x.example/' } }))).toBe(
      'http://x.example/',
    );
    await refusedAll(
      'site',
      ['javascript:alert(1)', 'ftp://files.example/x', 'not a url', 'partner.example/signup', 'data:text/html,hi'].map(
        (value) => (c: number) => get(t.url, { chatId: String(c), 'fields.site': value, leak: '1' }),
      ),
    );
  });

  it('select: one of its options; anything else → 422', async () => {
    expect(await stored('plan', (c) => get(t.url, `chatId=${c}&plan=gold`))).toBe('gold');
    expect(await stored('plan', (c) => postJson(t.url, { chatId: c, fields: { plan: 'silver' } }))).toBe('silver');
    await refusedAll('plan', [
      (c) => get(t.url, `chatId=${c}&plan=bronze&leak=1`),
      (c) => get(t.url, `chatId=${c}&plan=gold,silver&leak=1`),
      (c) => postJson(t.url, { chatId: c, leak: '1', fields: { plan: 'platinum' } }),
    ]);
  });

  it('multiselect: comma-separated or a JSON array of its options, stored as an array; an unknown option → 422', async () => {
    expect(await stored('features', (c) => get(t.url, `chatId=${c}&features=a,c`))).toEqual(['a', 'c']);
    expect(await stored('features', (c) => postJson(t.url, { chatId: c, fields: { features: ['b', 'a'] } }))).toEqual([
      'b',
      'a',
    ]);
    await refusedAll('features', [
      (c) => get(t.url, `chatId=${c}&features=a,z&leak=1`),
      (c) => postJson(t.url, { chatId: c, leak: '1', fields: { features: ['a', 'z'] } }),
    ]);
  });

  it('an undefined key (and a text field) is stored as text: JSON 5 → "5"', async () => {
    const chatId = ++chat;
    accepted(await postJson(t.url, { chatId, fields: { undefinedKey: 5, yes: true, f: 1.5 }, plain: 5, note: 12 }));
    accepted(await get(t.url, `chatId=${chatId}&zeros=007&fields.balanceLike=5000`));
    const d = await waitForDialog(
      t.botId,
      chatId,
      (x) => x.fields.zeros !== undefined && x.fields.undefinedKey !== undefined,
    );
    expect(d.fields).toEqual({
      undefinedKey: '5',
      yes: 'true',
      f: '1.5',
      plain: '5',
      note: '12',
      zeros: '007',
      balanceLike: '5000',
    });
  });
});

describe('tracker fields', () => {
  it('tracker.KEY, tracker[KEY] and JSON {"tracker":{…}} set tracker fields (not custom fields)', async () => {
    const t = await fresh();
    accepted(await get(t.url, 'chatId=7001&tracker.clickid=abc&tracker%5Bsub1%5D=s1&tracker[sub2]=s2'));
    accepted(await postForm(t.url, 'chatId=7002&tracker.clickid=form'));
    accepted(await postJson(t.url, { chatId: 7003, tracker: { clickid: 'def', cost: 1.5 } }));
    const a = await waitForDialog(t.botId, 7001, (x) => x.tracker.clickid === 'abc');
    expect(a.tracker).toEqual({ clickid: 'abc', sub1: 's1', sub2: 's2' });
    expect(a.fields).toEqual({});
    const b = await waitForDialog(t.botId, 7002, (x) => x.tracker.clickid === 'form');
    expect(b.tracker).toEqual({ clickid: 'form' });
    const c = await waitForDialog(t.botId, 7003, (x) => x.tracker.clickid === 'def');
    expect(c.tracker).toEqual({ clickid: 'def', cost: '1.5' });
    expect(c.fields).toEqual({});
  });
});

describe('tags', () => {
  it('tags / addTags add comma-separated tags, removeTags removes them; JSON arrays too', async () => {
    const t = await fresh();
    accepted(await get(t.url, { chatId: '8001', tags: 'a,b', addTags: ' c , d ,' }));
    await waitForDialog(t.botId, 8001, (x) => sorted(x.tags).join() === 'a,b,c,d', 'tags a,b,c,d');
    accepted(await get(t.url, 'chatId=8001&removeTags=a,c'));
    await waitForDialog(t.botId, 8001, (x) => sorted(x.tags).join() === 'b,d', 'tags b,d');
    accepted(await postJson(t.url, { chatId: 8001, tags: ['x', 'y'], removeTags: ['b'] }));
    await waitForDialog(t.botId, 8001, (x) => sorted(x.tags).join() === 'd,x,y', 'tags d,x,y');
    accepted(await postJson(t.url, { chatId: 8001, addTags: ['z'], removeTags: 'x,y' }));
    const d = await waitForDialog(t.botId, 8001, (x) => sorted(x.tags).join() === 'd,z', 'tags d,z');
    expect(d.fields).toEqual({});
    accepted(await postForm(t.url, 'chatId=8001&removeTags=d&addTags=w'));
    await waitForDialog(t.botId, 8001, (x) => sorted(x.tags).join() === 'w,z', 'tags w,z');
  });

  it('a malformed tag → 400; nothing queued', async () => {
    const t = await fresh();
    await expectNothingQueued(t, 8010, async () => {
      expectApiError(await get(t.url, { chatId: '8010', tags: 't'.repeat(65), leak: '1' }), 400, 'invalid_tag', 'tags');
      expectApiError(await get(t.url, 'chatId=8010&addTags=a%01b&leak=1'), 400, 'invalid_tag', 'addTags');
      expectApiError(
        await postJson(t.url, { chatId: 8010, leak: '1', removeTags: null }),
        400,
        'invalid_tag',
        'removeTags',
      );
      expect((await postJson(t.url, { chatId: 8010, leak: '1', tags: [1, 2] })).status).toBe(400);
    });
  });
});

describe('eventId and Idempotency-Key', () => {
  it('a repeated eventId → 200 {ok,duplicate,updateId} with the first updateId, not applied again', async () => {
    const t = await fresh();
    const first = accepted(await get(t.url, 'chatId=9001&userBalance=1&eventId=sale-1'));
    await waitForDialog(t.botId, 9001, (x) => x.fields.userBalance === '1');
    const second = accepted(await get(t.url, 'chatId=9001&userBalance=2'));
    await waitForDialog(t.botId, 9001, (x) => x.fields.userBalance === '2');

    const repeat = await get(t.url, 'chatId=9001&userBalance=1&eventId=sale-1');
    expect(repeat.status).toBe(200);
    expect(repeat.body).toEqual({ ok: true, duplicate: true, updateId: String(first) });
    const viaForm = await postForm(t.url, 'chatId=9001&userBalance=3&eventId=sale-1');
    expect(viaForm.status).toBe(200);
    expect(viaForm.body.updateId).toBe(String(first));

    const after = await settle(t, 9001);
    expect(after.updateId).toBe(second + 1);
    expect(after.dialog.fields.userBalance).toBe('2');
  });

  it("the Idempotency-Key header: the same, and it shares eventId's values", async () => {
    const t = await fresh();
    const first = accepted(
      await postJson(t.url, { chatId: 9002, userBalance: 1 }, '', { 'idempotency-key': 'order-77' }),
    );
    await waitForDialog(t.botId, 9002, (x) => x.fields.userBalance === '1');
    accepted(await get(t.url, 'chatId=9002&userBalance=2'));
    const before = await settle(t, 9002);
    expect(before.dialog.fields.userBalance).toBe('2');

    for (const reply of [
      await postJson(t.url, { chatId: 9002, userBalance: 5 }, '', { 'idempotency-key': 'order-77' }),
      await get(t.url, 'chatId=9002&userBalance=6', { 'idempotency-key': 'order-77' }),
      await get(t.url, 'chatId=9002&userBalance=7&eventId=order-77'),
    ]) {
      expect(reply.status).toBe(200);
      expect(reply.body).toEqual({ ok: true, duplicate: true, updateId: String(first) });
    }
    const after = await settle(t, 9002);
    expect(after.updateId).toBe(before.updateId + 1);
    expect(after.dialog.fields.userBalance).toBe('2');
  });

  it('a refused request does not use up its eventId', async () => {
    const t = await fresh();
    expectApiError(await get(t.url, 'chatId=9003&status=bogus&eventId=ev-1'), 400, 'invalid_status');
    expectApiError(await get(t.url, 'chatId=9003&stepId=nope&eventId=ev-1'), 422, 'unknown_step');
    expectApiError(await get(t.url, 'chatId=9003&stepId=nope', { 'idempotency-key': 'ev-2' }), 422, 'unknown_step');
    accepted(await get(t.url, 'chatId=9003&userBalance=9&eventId=ev-1'));
    accepted(await get(t.url, 'chatId=9003&refID=r', { 'idempotency-key': 'ev-2' }));
    const d = await waitForDialog(t.botId, 9003, (x) => x.fields.userBalance === '9' && x.fields.refID === 'r');
    expect(d.fields).toEqual({ userBalance: '9', refID: 'r' });
  });
});

describe('keys', () => {
  it('keys of 1–64 characters of [A-Za-z0-9_.-] are accepted', async () => {
    const t = await fresh();
    const long = `A${'b'.repeat(60)}_.-`;
    expect(long).toHaveLength(64);
    accepted(
      await get(t.url, [
        ['chatId', '10001'],
        [long, 'bare'],
        [`fields.${long.toLowerCase()}`, 'dotted'],
        ['x', 'one'],
        [`tracker.${long}`, 'tr'],
      ]),
    );
    const d = await waitForDialog(t.botId, 10001, (x) => x.fields.x === 'one');
    expect(d.fields).toEqual({ [long]: 'bare', [long.toLowerCase()]: 'dotted', x: 'one' });
    expect(d.tracker).toEqual({ [long]: 'tr' });
  });

  it('a 65-character key, "a b" and other characters → 400 invalid_key naming the parameter; nothing queued', async () => {
    const t = await fresh();
    const badKeys = ['k'.repeat(65), 'a b', 'a/b', 'ключ', 'a:b', 'a\tb', 'a[b', ''];
    await expectNothingQueued(t, 10002, async () => {
      for (const key of badKeys) {
        const label = JSON.stringify(key);
        const cases: Array<[string, () => Promise<Reply>]> = [
          [
            key,
            () =>
              get(t.url, [
                ['chatId', '10002'],
                ['leak', '1'],
                [key, '1'],
              ]),
          ],
          [
            `fields.${key}`,
            () =>
              get(t.url, [
                ['chatId', '10002'],
                ['leak', '1'],
                [`fields.${key}`, '1'],
              ]),
          ],
          [
            `details.${key}`,
            () =>
              get(t.url, [
                ['chatId', '10002'],
                ['leak', '1'],
                [`details.${key}`, '1'],
              ]),
          ],
          [
            `tracker.${key}`,
            () =>
              get(t.url, [
                ['chatId', '10002'],
                ['leak', '1'],
                [`tracker.${key}`, '1'],
              ]),
          ],
          [
            key,
            () =>
              postForm(t.url, [
                ['chatId', '10002'],
                ['leak', '1'],
                [key, '1'],
              ]),
          ],
          [key, () => postJson(t.url, { chatId: 10002, leak: '1', [key]: '1' })],
          [`fields.${key}`, () => postJson(t.url, { chatId: 10002, leak: '1', fields: { [key]: '1' } })],
          [`details.${key}`, () => postJson(t.url, { chatId: 10002, leak: '1', details: { [key]: '1' } })],
          [`tracker.${key}`, () => postJson(t.url, { chatId: 10002, leak: '1', tracker: { [key]: '1' } })],
        ];
        if (!key.includes('[')) {
          cases.push([
            `fields[${key}]`,
            () =>
              get(t.url, [
                ['chatId', '10002'],
                ['leak', '1'],
                [`fields[${key}]`, '1'],
              ]),
          ]);
          cases.push([
            `tracker[${key}]`,
            () =>
              get(t.url, [
                ['chatId', '10002'],
                ['leak', '1'],
                [`tracker[${key}]`, '1'],
              ]),
          ]);
        }
        for (const [param, request] of cases) {
          const reply = await request();
          expect(reply.status, `${label} as ${param}: ${JSON.stringify(reply.body)}`).toBe(400);
          expect(reply.body.error.code, `${label} as ${param}`).toBe('invalid_key');
          expect(reply.body.error.param, `${label} as ${param}`).toBe(param);
        }
      }
      expectApiError(await get(t.url, 'chatId=10002&leak=1&a+b=1'), 400, 'invalid_key', 'a b');
      expectApiError(await get(t.url, 'chatId=10002&leak=1&fields.a%20b=1'), 400, 'invalid_key', 'fields.a b');
    });
  });

  it('__proto__, constructor and prototype → 400 invalid_key everywhere; no other dialog or bot touched; Object.prototype clean', async () => {
    const a = await fresh();
    const b = await fresh();
    const protoNames = Object.getOwnPropertyNames(Object.prototype).sort();
    for (const t of [a, b]) {
      accepted(await get(t.url, 'chatId=10010&keep=1&tracker.clickid=c1&tags=t1&status=manual'));
      await waitForDialog(t.botId, 10010, (x) => x.fields.keep === '1');
    }
    const bBefore = await settle(b, 10010);

    await expectNothingQueued(a, 10010, async () => {
      for (const name of ['__proto__', 'constructor', 'prototype']) {
        const queries: Array<[string, string]> = [
          [name, `${name}=1`],
          [`${name}[polluted]`, `${name}[polluted]=yes`],
          [`fields.${name}`, `fields.${name}=1`],
          [`details.${name}`, `details.${name}=1`],
          [`fields[${name}]`, `fields[${name}]=1`],
          [`details[${name}]`, `details%5B${name}%5D=1`],
          [`tracker.${name}`, `tracker.${name}=1`],
          [`tracker[${name}]`, `tracker[${name}]=1`],
        ];
        for (const [param, query] of queries) {
          for (const chatId of [10010, 10011]) {
            expectApiError(await get(a.url, `chatId=${chatId}&leak=1&${query}`), 400, 'invalid_key', param);
          }
          expectApiError(await postForm(a.url, `chatId=10010&leak=1&${query}`), 400, 'invalid_key', param);
        }
        const bodies: Array<[string, string]> = [
          [name, `{"chatId":10010,"leak":"1","${name}":"1"}`],
          [name, `{"chatId":10010,"leak":"1","${name}":{"polluted":"yes"}}`],
          [name, `{"chatId":10011,"${name}":{"prototype":{"polluted":"yes"}},"leak":"1"}`],
          [`fields.${name}`, `{"chatId":10010,"leak":"1","fields":{"${name}":"1"}}`],
          [`fields.${name}`, `{"chatId":10010,"leak":"1","fields":{"${name}":{"polluted":"yes"}}}`],
          [`details.${name}`, `{"chatId":10010,"leak":"1","details":{"${name}":{"polluted":"yes"}}}`],
          [`tracker.${name}`, `{"chatId":10010,"leak":"1","tracker":{"${name}":"1"}}`],
          [`tracker.${name}`, `{"chatId":10011,"leak":"1","tracker":{"${name}":{"polluted":"yes"}}}`],
        ];
        for (const [param, body] of bodies) {
          const reply = await postJson(a.url, body);
          expect(reply.status, `${body}: ${JSON.stringify(reply.body)}`).toBe(400);
          expect(reply.body.error.code, body).toBe('invalid_key');
          expect(reply.body.error.param, body).toBe(param);
        }
      }
    });

    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.hasOwn(Object.prototype, 'polluted')).toBe(false);
    expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(protoNames);
    expect(await dialog(a.botId, 10011)).toBeNull();
    const rows = await h.db('dialogs').whereIn('bot_id', [a.botId, b.botId]).select('bot_id', 'chat_id');
    expect(rows.map((r: { chat_id: number }) => r.chat_id).sort()).toEqual([10010, 10010]);
    const bAfter = await dialog(b.botId, 10010);
    expect(bAfter).toEqual(bBefore.dialog);
    const aAfter = await dialog(a.botId, 10010);
    expect(withoutMarker(aAfter)).toMatchObject({
      fields: { keep: '1' },
      tracker: { clickid: 'c1' },
      tags: ['t1'],
      status: 'manual',
    });
    expect(Object.keys(aAfter.fields).sort()).toEqual(['keep', 'marker']);
  });
});

describe('sizes (413)', () => {
  it('a value of 4 KiB is accepted; one byte more → 413 value_too_large naming it; nothing queued', async () => {
    const t = await fresh();
    const ascii = 'x'.repeat(4096);
    const multibyte = 'é'.repeat(2048); // 4096 bytes
    accepted(await postForm(t.url, { chatId: '11001', 'fields.big': ascii, wide: multibyte, 'tracker.t': ascii }));
    const d = await waitForDialog(t.botId, 11001, (x) => x.fields.big !== undefined);
    expect(d.fields.big).toBe(ascii);
    expect(d.fields.wide).toBe(multibyte);
    expect(d.tracker.t).toBe(ascii);

    const over = 'x'.repeat(4097);
    await expectNothingQueued(t, 11001, async () => {
      expectApiError(
        await postForm(t.url, { chatId: '11001', leak: '1', 'fields.big': over }),
        413,
        'value_too_large',
        'fields.big',
      );
      expectApiError(
        await postForm(t.url, { chatId: '11001', leak: '1', wide: 'é'.repeat(2049) }),
        413,
        'value_too_large',
        'wide',
      );
      expectApiError(await get(t.url, { chatId: '11001', leak: '1', refID: over }), 413, 'value_too_large', 'refID');
      expectApiError(
        await postForm(t.url, { chatId: '11001', leak: '1', 'tracker.t': over }),
        413,
        'value_too_large',
        'tracker.t',
      );
      expectApiError(
        await postJson(t.url, { chatId: 11001, leak: '1', fields: { big: over } }),
        413,
        'value_too_large',
        'fields.big',
      );
      expectApiError(
        await postJson(t.url, { chatId: 11001, leak: '1', tracker: { t: over } }),
        413,
        'value_too_large',
        'tracker.t',
      );
      expectApiError(
        await postJson(t.url, { chatId: 11001, leak: '1', tags: ['a'.repeat(60), ...Array(80).fill('b'.repeat(50))] }),
        413,
        'value_too_large',
        'tags',
      );
      expectApiError(
        await postJson(t.url, { chatId: 11001, leak: '1', stepId: over }),
        413,
        'value_too_large',
        'stepId',
      );
      expectApiError(
        await postForm(t.url, { chatId: '11001', leak: '1', eventId: over }),
        413,
        'value_too_large',
        'eventId',
      );
    });
  });

  it('a request body over 64 KiB → 413 request_too_large (with or without Content-Length); nothing queued', async () => {
    const t = await fresh();
    await expectNothingQueued(t, 11002, async () => {
      expectApiError(await postForm(t.url, `chatId=11002&leak=1&pad=${'x'.repeat(70_000)}`), 413, 'request_too_large');
      expectApiError(
        await postForm(t.url, `pad=${'x'.repeat(70_000)}`, 'chatId=11002&leak=1'),
        413,
        'request_too_large',
      );
      expectApiError(
        await postJson(t.url, { chatId: 11002, leak: '1', pad: 'x'.repeat(70_000) }),
        413,
        'request_too_large',
      );
      // 17 fields of 4000 bytes: every value within 4 KiB, the body past 64 KiB
      const many = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`f${i}`, 'y'.repeat(4000)]));
      expectApiError(await postJson(t.url, { chatId: 11002, leak: '1', ...many }), 413, 'request_too_large');
      const chunk = new TextEncoder().encode('z'.repeat(5000));
      const streamed = await send(`${t.url}?chatId=11002&leak=1`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new ReadableStream({
          start(controller) {
            controller.enqueue(new TextEncoder().encode('pad='));
            for (let i = 0; i < 20; i++) controller.enqueue(chunk);
            controller.close();
          },
        }),
        duplex: 'half',
      } as RequestInit);
      expectApiError(streamed, 413, 'request_too_large');
    });
  });

  it('a body within 64 KiB is accepted whole', async () => {
    const t = await fresh();
    const many = Object.fromEntries(Array.from({ length: 15 }, (_, i) => [`f${i}`, `${i}`.padEnd(4000, 'v')]));
    const body = JSON.stringify({ chatId: 11003, ...many });
    expect(body.length).toBeGreaterThan(60_000);
    expect(body.length).toBeLessThan(64 * 1024);
    accepted(await postJson(t.url, body));
    const d = await waitForDialog(t.botId, 11003, (x) => x.fields.f14 !== undefined);
    expect(d.fields).toEqual(many);
  });

  it('a GET whose query string is within 64 KiB (five 4000-byte values) is accepted', async () => {
    const t = await fresh();
    const params = Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`g${i}`, `${i}`.padEnd(4000, 'q')]));
    const reply = await rawRequest(h.web!.port, 'GET', `${new URL(t.url).pathname}?chatId=11004&${qs(params)}`);
    expect(reply.status, `${reply.status} ${reply.contentType} ${reply.text.slice(0, 200)}`).toBe(202);
    const d = await waitForDialog(t.botId, 11004, (x) => x.fields.g4 !== undefined);
    expect(d.fields).toEqual(params);
  });

  it('a GET over 64 KiB is refused with a 4xx, never a 5xx, and queues nothing', async () => {
    const t = await fresh();
    await expectNothingQueued(t, 11005, async () => {
      const reply = await rawRequest(
        h.web!.port,
        'GET',
        `${new URL(t.url).pathname}?chatId=11005&leak=1&pad=${'p'.repeat(70_000)}`,
      );
      expect([413, 414, 431]).toContain(reply.status);
    });
  });
});

describe('malformed bodies and encodings (400, 415)', () => {
  it('broken JSON → 400 invalid_json; the query beside it is not applied either', async () => {
    const t = await fresh();
    await expectNothingQueued(t, 12001, async () => {
      for (const body of [
        '{"chatId":',
        '{chatId:12001}',
        "{'chatId':12001}",
        '{"chatId":12001,}',
        '{"chatId":12001} trailing',
        '{"a":"\\x"}',
        'chatId=12001',
      ]) {
        expectApiError(await postJson(t.url, body, 'chatId=12001&leak=1'), 400, 'invalid_json');
      }
    });
  });

  it('a JSON body that is not an object (array, null, string, number) → 400 invalid_json', async () => {
    const t = await fresh();
    await expectNothingQueued(t, 12002, async () => {
      for (const body of ['[{"chatId":12002}]', '[]', 'null', '"chatId"', '42', 'true']) {
        expectApiError(await postJson(t.url, body, 'chatId=12002&leak=1'), 400, 'invalid_json');
      }
    });
  });

  it('non-UTF-8 → 400 invalid_encoding: %FF in the query, raw 0xFF bytes in a body, bad percent-escapes', async () => {
    const t = await fresh();
    await expectNothingQueued(t, 12003, async () => {
      for (const query of [
        'chatId=12003&leak=1&a=%FF',
        'chatId=12003&leak=1&%FF=1',
        'chatId=12003&leak=1&a=%C0%AF',
        'chatId=12003&leak=1&a=%ED%A0%80',
        'chatId=12003&leak=1&a=%E2%82',
        'chatId=12003&leak=1&a=%zz',
        'chatId=12003&leak=1&a=%',
      ]) {
        expectApiError(await get(t.url, query), 400, 'invalid_encoding');
      }
      expectApiError(await postForm(t.url, 'chatId=12003&leak=1&a=%FF'), 400, 'invalid_encoding');
      const bytes = (...parts: Array<string | number[]>) =>
        new Uint8Array(Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p)))));
      expectApiError(await postForm(t.url, bytes('chatId=12003&leak=1&a=', [0xff])), 400, 'invalid_encoding');
      expectApiError(
        await postForm(
          t.url,
          bytes('chatId=12003&leak=1&caf', [0xe9], '=1'),
          '',
          'application/x-www-form-urlencoded; charset=iso-8859-1',
        ),
        400,
        'invalid_encoding',
      );
      const json = await send(t.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: bytes('{"chatId":12003,"leak":"1","a":"', [0xff, 0xfe], '"}') as unknown as BodyInit,
      });
      expectApiError(json, 400, 'invalid_encoding');
      // a JSON escape of an unpaired surrogate is not Unicode text either
      expectApiError(
        await postJson(t.url, '{"chatId":12003,"leak":"1","a":"x\\ud800y"}'),
        400,
        'invalid_encoding',
        'a',
      );
      expectApiError(
        await postJson(t.url, '{"chatId":12003,"leak":"1","tracker":{"t":"\\udc00"}}'),
        400,
        'invalid_encoding',
        'tracker.t',
      );
    });
  });

  it('raw 0xFF bytes in the request target → 400, nothing queued', async () => {
    const t = await fresh();
    await expectNothingQueued(t, 12004, async () => {
      const path = new URL(t.url).pathname;
      const reply = await rawRequest(h.web!.port, 'GET', `${path}?chatId=12004&leak=1&a=\u00ff`);
      expect(reply.status).toBe(400);
    });
  });

  it('valid UTF-8 is stored as sent', async () => {
    const t = await fresh();
    accepted(await get(t.url, 'chatId=12005&name=%D0%9F%D1%80%D0%B8%D0%B2%D0%B5%D1%82&spaced=a+b%20c&plus=1%2B1'));
    accepted(await postJson(t.url, '{"chatId":12005,"emoji":"😀 \\ud83d\\ude00","tracker":{"utm":"café"}}'));
    const d = await waitForDialog(t.botId, 12005, (x) => x.fields.emoji !== undefined && x.fields.name !== undefined);
    expect(d.fields).toEqual({ name: 'Привет', spaced: 'a b c', plus: '1+1', emoji: '😀 😀' });
    expect(d.tracker).toEqual({ utm: 'café' });
  });

  it('U+0000 in a value → 400 (Postgres cannot store it: it must not be accepted and then lost)', async () => {
    const t = await fresh();
    await expectNothingQueued(t, 12006, async () => {
      expectApiError(await get(t.url, 'chatId=12006&leak=1&a=x%00y'), 400, 'invalid_value', 'a');
      expectApiError(
        await postJson(t.url, '{"chatId":12006,"leak":"1","fields":{"a":"x\\u0000y"}}'),
        400,
        'invalid_value',
        'fields.a',
      );
      expectApiError(await get(t.url, 'chatId=12006&leak=1&tracker.t=%00'), 400, 'invalid_value', 'tracker.t');
    });
  });

  it('an unsupported content type → 415 unsupported_media_type; the query beside it is not applied', async () => {
    const t = await fresh();
    await expectNothingQueued(t, 12007, async () => {
      for (const type of ['text/plain', 'application/xml', 'application/octet-stream', 'text/html; charset=utf-8']) {
        expectApiError(
          await postForm(t.url, 'chatId=12007&leak=1', 'chatId=12007&leak=1', type),
          415,
          'unsupported_media_type',
        );
      }
      const form = new FormData();
      form.set('chatId', '12007');
      form.set('leak', '1');
      expectApiError(
        await send(`${t.url}?chatId=12007&leak=1`, { method: 'POST', body: form }),
        415,
        'unsupported_media_type',
      );
    });
  });
});

describe('unknown or deleted postbackId (404)', () => {
  it('an unknown postbackId (a UUID v4) → 404, GET and POST', async () => {
    const url = `${h.baseUrl}/api/bots/webhooks/${randomUUID()}/updateDialog`;
    expectApiError(await get(url, 'chatId=1&refID=1'), 404, 'unknown_webhook');
    expectApiError(await postJson(url, { chatId: 1 }), 404, 'unknown_webhook');
    expectApiError(await postForm(url, 'chatId=1'), 404, 'unknown_webhook');
  });

  it('a postbackId that is not a UUID → 404', async () => {
    const t = await fresh();
    const id = t.endpointId;
    for (const bad of [
      'not-a-uuid',
      '123',
      `${id}x`,
      id.replace(/-/g, ''),
      `${id.slice(0, -1)}g`,
      '%00',
      '..%2F..%2Fhealthz',
      ' ',
      `${id}%20`,
    ]) {
      const url = `${h.baseUrl}/api/bots/webhooks/${bad}/updateDialog`;
      const reply = await get(url, 'chatId=1&refID=1');
      expect(reply.status, bad).toBe(404);
    }
  });

  it("a deleted webhook answers 404 at once (GET and POST); the bot's other webhook still works; nothing queued", async () => {
    const t = await fresh();
    const doomed = await addWebhook(t.botId, { name: 'doomed' });
    accepted(await get(doomed.url, 'chatId=13001&before=1')); // caches the endpoint in the web tier
    await waitForDialog(t.botId, 13001, (x) => x.fields.before === '1');
    const deleted = await h.api('DELETE', `/api/v1/bots/${t.botId}/webhooks/${doomed.endpointId}`);
    expect(deleted.status).toBe(204);
    await expectNothingQueued(t, 13001, async () => {
      expectApiError(await get(doomed.url, 'chatId=13001&leak=1'), 404, 'unknown_webhook');
      expectApiError(await postJson(doomed.url, { chatId: 13001, leak: '1' }), 404, 'unknown_webhook');
      expectApiError(await postForm(doomed.url, 'chatId=13001&leak=1'), 404, 'unknown_webhook');
      await new Promise((resolve) => setTimeout(resolve, 200));
      expectApiError(await get(doomed.url, 'chatId=13001&leak=1'), 404, 'unknown_webhook');
    });
    const list = await h.api('GET', `/api/v1/bots/${t.botId}/webhooks`);
    expect(list.body.webhooks.map((w: { id: string }) => w.id)).toEqual([t.endpointId]);
  });
});

describe('rate limit (429)', () => {
  it("over the endpoint's rate limit → 429 with Retry-After; refused requests are not queued; the limit is per webhook", async () => {
    const bot = await fresh();
    const limited = await addWebhook(bot.botId, { name: 'x', rateLimit: 2 });
    const before = await settle(bot, 14001);
    const burst = await Promise.all(Array.from({ length: 10 }, (_, i) => get(limited.url, `chatId=14001&r${i}=1`)));
    const acceptedCount = burst.filter((r) => r.status === 202).length;
    const limitedReplies = burst.filter((r) => r.status === 429);
    expect(acceptedCount + limitedReplies.length).toBe(10);
    expect(acceptedCount).toBeGreaterThanOrEqual(1);
    expect(acceptedCount).toBeLessThanOrEqual(3);
    for (const reply of limitedReplies) {
      expectApiError(reply, 429, 'rate_limited');
      const retryAfter = reply.headers.get('retry-after');
      expect(retryAfter).toMatch(/^\d+$/);
      expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
      expect(Number(retryAfter)).toBeLessThanOrEqual(60);
    }
    // another webhook of the same bot is not limited by this one
    const after = await settle(bot, 14001);
    expect(after.updateId).toBe(before.updateId + acceptedCount + 1);
    await waitForDialog(
      bot.botId,
      14001,
      (x) => burst.every((r, i) => r.status !== 202 || x.fields[`r${i}`] === '1'),
      'the accepted burst',
    );
    const d = await dialog(bot.botId, 14001);
    burst.forEach((reply, i) => {
      expect(d.fields[`r${i}`], `r${i} answered ${reply.status}`).toBe(reply.status === 202 ? '1' : undefined);
    });
    // after Retry-After the endpoint accepts again
    await new Promise((resolve) =>
      setTimeout(resolve, Number(limitedReplies[0]!.headers.get('retry-after')) * 1000 + 100),
    );
    accepted(await get(limited.url, 'chatId=14001&again=1'));
    await waitForDialog(bot.botId, 14001, (x) => x.fields.again === '1');
  });
});

describe('queue unreachable (503)', () => {
  it('503 with Retry-After and the JSON error shape when Redis does not answer', async () => {
    const t = await fresh();
    const web = await startWebTier(testConfig({ REDIS_URL: 'redis://127.0.0.1:1' }), h.db, createLogger('silent'));
    try {
      const url = `http://127.0.0.1:${web.port}${new URL(t.url).pathname}`;
      for (const reply of [
        await get(url, 'chatId=15001&refID=1'),
        await get(url, 'chatId=15001&refID=1&eventId=e-1'),
        await postJson(url, { chatId: 15001, refID: '1' }),
      ]) {
        expectApiError(reply, 503, 'queue_unavailable');
        expect(reply.headers.get('retry-after')).toMatch(/^\d+$/);
      }
      // an invalid request is still refused for what it is
      expectApiError(await get(url, 'chatId=abc'), 400, 'invalid_chat_id');
    } finally {
      await web.close();
    }
    await settle(t, 15001);
    expect((await dialog(t.botId, 15001)).fields.refID).toBeUndefined();
  });
});

describe('every refusal queues nothing', () => {
  const chatId = 16001;
  const other = 16002;
  let t: Target;
  let limited: Target;
  let deleted: Target;
  beforeAll(async () => {
    t = await fresh();
    await uploadSteps(t.botId, ['welcome']);
    await defineField(t.botId, 'balance', { name: 'Balance', type: 'number' });
    limited = await addWebhook(t.botId, { name: 'limited', rateLimit: 1 });
    deleted = await addWebhook(t.botId, { name: 'deleted' });
    accepted(await get(deleted.url, `chatId=${other}&warm=1`));
    expect((await h.api('DELETE', `/api/v1/bots/${t.botId}/webhooks/${deleted.endpointId}`)).status).toBe(204);
    accepted(await get(t.url, `chatId=${chatId}&status=manual&keep=1&tags=k&tracker.clickid=c`));
    await waitForDialog(t.botId, chatId, (x) => x.fields.keep === '1');
  });

  const q = `chatId=${chatId}&leak=1&status=blocked&tags=leak&tracker.leak=1`;
  const cases: Array<{ kind: string; status: number; code: string; extraQueued?: number; run: () => Promise<Reply> }> =
    [
      { kind: 'missing chatId', status: 400, code: 'missing_chat_id', run: () => get(t.url, 'leak=1&status=blocked') },
      {
        kind: 'invalid chatId',
        status: 400,
        code: 'invalid_chat_id',
        run: () => get(t.url, `chatId=abc&chat_id=${chatId}&leak=1`),
      },
      { kind: 'invalid status', status: 400, code: 'invalid_status', run: () => get(t.url, `${q}&status=paused`) },
      { kind: 'invalid key', status: 400, code: 'invalid_key', run: () => get(t.url, `${q}&fields.a%20b=1`) },
      {
        kind: 'reserved key',
        status: 400,
        code: 'invalid_key',
        run: () => postJson(t.url, `{"chatId":${chatId},"leak":"1","__proto__":{"leak":"1"}}`),
      },
      { kind: 'bare reserved name', status: 400, code: 'invalid_param', run: () => get(t.url, `${q}&fields=1`) },
      {
        kind: 'invalid tag',
        status: 400,
        code: 'invalid_tag',
        run: () => get(t.url, `${q}&addTags=${'t'.repeat(65)}`),
      },
      {
        kind: 'invalid eventId',
        status: 400,
        code: 'invalid_event_id',
        run: () => get(t.url, `${q}&eventId=${'e'.repeat(300)}`),
      },
      { kind: 'broken JSON', status: 400, code: 'invalid_json', run: () => postJson(t.url, '{"leak":', q) },
      {
        kind: 'JSON array',
        status: 400,
        code: 'invalid_json',
        run: () => postJson(t.url, `[{"chatId":${chatId}}]`, q),
      },
      { kind: 'non-UTF-8 query', status: 400, code: 'invalid_encoding', run: () => get(t.url, `${q}&x=%FF`) },
      {
        kind: 'non-UTF-8 body',
        status: 400,
        code: 'invalid_encoding',
        run: () => postForm(t.url, new Uint8Array([...Buffer.from(`${q}&x=`), 0xff])),
      },
      { kind: 'U+0000', status: 400, code: 'invalid_value', run: () => get(t.url, `${q}&x=%00`) },
      {
        kind: 'value too large',
        status: 413,
        code: 'value_too_large',
        run: () => postForm(t.url, `${q}&x=${'x'.repeat(4097)}`),
      },
      {
        kind: 'request too large',
        status: 413,
        code: 'request_too_large',
        run: () => postForm(t.url, `x=${'x'.repeat(70_000)}`, q),
      },
      {
        kind: 'unsupported media type',
        status: 415,
        code: 'unsupported_media_type',
        run: () => postForm(t.url, q, q, 'text/plain'),
      },
      { kind: 'unknown step', status: 422, code: 'unknown_step', run: () => get(t.url, `${q}&stepId=nope`) },
      { kind: 'wrong field type', status: 422, code: 'invalid_field_value', run: () => get(t.url, `${q}&balance=abc`) },
      { kind: 'deleted webhook', status: 404, code: 'unknown_webhook', run: () => get(deleted.url, q) },
      {
        kind: 'unknown webhook',
        status: 404,
        code: 'unknown_webhook',
        run: () => get(`${h.baseUrl}/api/bots/webhooks/${randomUUID()}/updateDialog`, q),
      },
      {
        kind: 'rate limited',
        status: 429,
        code: 'rate_limited',
        extraQueued: 1,
        run: async () => {
          accepted(await get(limited.url, `chatId=${other}&spend=1`)); // spends the one token (another dialog)
          return get(limited.url, q);
        },
      },
    ];

  it.each(cases)('$kind → $status $code', async ({ status, code, extraQueued, run }) => {
    const d = await expectNothingQueued(
      t,
      chatId,
      async () => {
        expectApiError(await run(), status, code);
      },
      extraQueued ?? 0,
    );
    expect(d.fields.leak).toBeUndefined();
    expect(d.status).toBe('manual');
    expect(d.tags).toEqual(['k']);
    expect(d.tracker).toEqual({ clickid: 'c' });
  });
});

describe('hostile input never gives a 5xx', () => {
  it('every malformed or hostile request is refused with a 4xx JSON error; nothing queued; the process stays sound', async () => {
    const t = await fresh();
    const c = 17001;
    const enc = encodeURIComponent;
    const deep = (depth: number) => `{"chatId":${c},"a":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}`;
    const gets: string[] = [
      '=x',
      `chatId=${c}&=x`,
      '&&&',
      '&',
      '=',
      '==',
      'chatId',
      `chatId[]=${c}`,
      `chatId[0]=${c}`,
      `chatId=${c}&fields[]=1`,
      `chatId=${c}&fields[a=1`,
      `chatId=${c}&fields[a]]=1`,
      `chatId=${c}&fields[a][b]=1`,
      `chatId=${c}&fields.=1`,
      `chatId=${c}&fields=1`,
      `chatId=${c}&details=1`,
      `chatId=${c}&tracker=1`,
      `chatId=${c}&tracker[]=1`,
      `chatId=${c}&${'n'.repeat(1000)}=1`,
      `chatId=${c}&fields.${'n'.repeat(10_000)}=1`,
      `chatId=${c}&%00=1`,
      `chatId=${c}&a%00=1`,
      `chatId=${c}&${enc('ключ')}=1`,
      `chatId=${c}&${enc('🙂')}=1`,
      `chatId=${c}&%E2%80%AE=1`,
      `chatId=${c}&a=%`,
      `chatId=${c}&a=%zz`,
      `chatId=${c}&a=%F0%9F`,
      `chatId=${c}&%=1`,
      'chatId=1e400',
      'chatId=Infinity',
      'chatId=NaN',
      'chatId=-',
      'chatId=0x1F',
      `chatId=${'9'.repeat(400)}`,
      `chatId=${enc('١٢٣')}`,
      `chatId=${c}&status=`,
      `chatId=${c}&status=${'a'.repeat(3000)}`,
      `chatId=${c}&stepId=`,
      `chatId=${c}&stepId=%20`,
      `chatId=${c}&eventId=`,
      `chatId=${c}&eventId=%20%20`,
      `chatId=${c}&eventId=${'e'.repeat(300)}`,
      `chatId=${c}&tags=${'t'.repeat(65)}`,
      `chatId=${c}&tags=a%01b`,
      `chatId=${c}&constructor[prototype][polluted]=1`,
      `chatId=${c}&__proto__[polluted]=1`,
      `chatId=${c}&fields.__proto__=1`,
      `chatId=${c}&a=${'x'.repeat(5000)}`,
    ];
    const forms: string[] = [
      '=',
      '&',
      '&&=&=',
      'chatId',
      `chatId=${c}&=`,
      `chatId=${c}&%`,
      `chatId=${c}&a=%E0`,
      `{"chatId":${c}}`,
    ];
    const jsons: string[] = [
      'null',
      'true',
      '"str"',
      '1e400',
      '[]',
      '{}',
      `{"chatId":1e400}`,
      `{"chatId":-1e400}`,
      `{"chatId":null}`,
      `{"chatId":{}}`,
      `{"chatId":[1]}`,
      `{"chatId":true}`,
      `{"chatId":"1e3"}`,
      `{"chatId":-0}`,
      `{"chatId":0.5}`,
      `{"chatId":${c},"fields":[]}`,
      `{"chatId":${c},"fields":"x"}`,
      `{"chatId":${c},"fields":null}`,
      `{"chatId":${c},"fields":{"a":{"b":{"c":1}}}}`,
      `{"chatId":${c},"a":{"b":1}}`,
      deep(2_000),
      '['.repeat(30_000) + ']'.repeat(30_000),
      `{"chatId":${c},"a":${'['.repeat(20_000)}${']'.repeat(20_000)}}`,
      `{"chatId":${c},"x":1e400}`,
      `{"chatId":${c},"x":-1e400}`,
      `{"chatId":${c},"tags":[1,2]}`,
      `{"chatId":${c},"tags":[null]}`,
      `{"chatId":${c},"tags":{}}`,
      `{"chatId":${c},"tags":null}`,
      `{"chatId":${c},"status":["auto"]}`,
      `{"chatId":${c},"status":null}`,
      `{"chatId":${c},"stepId":{}}`,
      `{"chatId":${c},"stepId":null}`,
      `{"chatId":${c},"stepId":""}`,
      `{"chatId":${c},"eventId":{}}`,
      `{"chatId":${c},"eventId":""}`,
      `{"chatId":${c},"tracker":{"a":[1]}}`,
      `{"chatId":${c},"tracker":{"a":{}}}`,
      `{"chatId":${c},"tracker":[]}`,
      `{"chatId":${c},"tracker":null}`,
      `{"chatId":${c},"":1}`,
      `{"chatId":${c},"ключ":1}`,
      `{"chatId":${c},"a\\u0000":1}`,
      `{"chatId":${c},"a":"x\\u0000y"}`,
      `{"chatId":${c},"a":"\\ud800"}`,
      `{"chatId":${c}} x`,
      `{"chatId":${c},"chatId":"x"}`,
      `{"chatId":${c},"fields":{"__proto__":{"polluted":1}}}`,
      `{"chatId":${c},"constructor":{"prototype":{"polluted":1}}}`,
      `{"chatId":${c},"__proto__":{"polluted":1}}`,
      `{"chatId":${c},"a":"${'x'.repeat(5000)}"}`,
      `{"chatId":${c},"pad":"${'x'.repeat(70_000)}"}`,
    ];
    const path = new URL(t.url).pathname;
    const requests: Array<[string, () => Promise<{ status: number; text: string; contentType: string | undefined }>]> =
      [
        ...gets.map((query): [string, () => Promise<any>] => [
          `GET ?${query.slice(0, 80)}`,
          () => rawRequest(h.web!.port, 'GET', `${path}?${query}`),
        ]),
        ...forms.map((body): [string, () => Promise<any>] => [
          `form ${body.slice(0, 80)}`,
          () =>
            rawRequest(
              h.web!.port,
              'POST',
              path,
              { 'content-type': 'application/x-www-form-urlencoded' },
              Buffer.from(body),
            ),
        ]),
        ...jsons.map((body): [string, () => Promise<any>] => [
          `JSON ${body.slice(0, 80)}`,
          () => rawRequest(h.web!.port, 'POST', path, { 'content-type': 'application/json' }, Buffer.from(body)),
        ]),
        [
          `form without content type, bad chatId`,
          () => rawRequest(h.web!.port, 'POST', path, {}, Buffer.from('chatId=abc')),
        ],
        [
          'JSON in UTF-16',
          () =>
            rawRequest(
              h.web!.port,
              'POST',
              path,
              { 'content-type': 'application/json; charset=utf-16' },
              Buffer.from(`{"chatId":${c}}`, 'utf16le'),
            ),
        ],
        [
          'Idempotency-Key of 300 characters',
          () => rawRequest(h.web!.port, 'GET', `${path}?chatId=${c}`, { 'idempotency-key': 'k'.repeat(300) }),
        ],
        ['DELETE', () => rawRequest(h.web!.port, 'DELETE', `${path}?chatId=${c}`)],
        [
          'PUT',
          () =>
            rawRequest(
              h.web!.port,
              'PUT',
              `${path}?chatId=${c}`,
              { 'content-type': 'application/json' },
              Buffer.from(`{"chatId":${c}}`),
            ),
        ],
      ];
    const protoNames = Object.getOwnPropertyNames(Object.prototype).sort();

    const problems: string[] = [];
    await expectNothingQueued(t, c, async () => {
      for (const [label, request] of requests) {
        const reply = await request();
        let body: any;
        try {
          body = JSON.parse(reply.text);
        } catch {
          problems.push(`${label}: ${reply.status} not JSON: ${reply.text.slice(0, 100)}`);
          continue;
        }
        if (reply.status >= 500) problems.push(`${label}: ${reply.status} ${reply.text.slice(0, 200)}`);
        else if (reply.status < 400) problems.push(`${label}: accepted (${reply.status} ${reply.text.slice(0, 200)})`);
        else if (!/^application\/json\b/.test(reply.contentType ?? ''))
          problems.push(`${label}: content type ${reply.contentType}`);
        else {
          try {
            checkShape({ status: reply.status, body, headers: new Headers() });
          } catch (error) {
            problems.push(`${label}: ${(error as Error).message.split('\n')[0]}`);
          }
        }
      }
    });
    expect(problems).toEqual([]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(protoNames);
    const counted = await h.db('dialogs').where({ bot_id: t.botId }).count('* as count');
    expect(Number(counted[0]?.count)).toBe(1);
  });
});
