import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb } from '../../src/db/connection.js';
import { createLogger } from '../../src/config/log.js';
import { startWebTier } from '../../src/http/server.js';
import type { ManagementDeps } from '../../src/http/routes/management-deps.js';
import { managementRouter } from '../../src/http/routes/management.js';
import {
  ADMIN_KEY,
  createBotWithEndpoint,
  expectApiError,
  startHarness,
  testConfig,
  waitFor,
  type Harness,
} from '../support/harness.js';

const PUBLIC_URL = 'https://flowpost.example.com/base';

let h: Harness;
beforeAll(async () => {
  // A trailing slash on PUBLIC_URL must not double the slash in webhook URLs.
  h = await startHarness({ workers: true, env: { PUBLIC_URL: `${PUBLIC_URL}/` } });
});
afterAll(async () => {
  await h?.close();
});

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

interface RawResponse {
  status: number;
  headers: Headers;
  text: string;
  body: any;
}

/** A request with exactly the given headers (no admin key unless given). */
async function raw(
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string,
): Promise<RawResponse> {
  const response = await fetch(`${h.baseUrl}${path}`, { method, headers, body });
  const text = await response.text();
  let parsed: unknown = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = undefined;
  }
  return { status: response.status, headers: response.headers, text, body: parsed };
}

const auth = { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' };

async function createBot(body: Record<string, unknown> = { name: 'bot' }): Promise<string> {
  const res = await h.api('POST', '/api/v1/bots', body);
  expect(res.status).toBe(201);
  return res.body.id as string;
}

async function uploadScript(botId: string, keys: string[]): Promise<Map<string, string>> {
  const res = await h.api('PUT', `/api/v1/bots/${botId}/script`, {
    start: keys[0],
    steps: keys.map((key) => ({ key, type: 'send_message', text: `step ${key}` })),
  });
  expect(res.status).toBe(200);
  return new Map(res.body.steps.map((s: { key: string; id: string }) => [s.key, s.id]));
}

describe('bots', () => {
  it('POST creates a bot (201 with its id) that GET returns', async () => {
    const created = await h.api('POST', '/api/v1/bots', { name: '  Funnel  ', timezone: 'Europe/Berlin' });
    expect(created.status).toBe(201);
    expect(created.body.id).toMatch(UUID_V4);
    expect(created.body).toMatchObject({ name: 'Funnel', timezone: 'Europe/Berlin', hasTelegramToken: false });

    const fetched = await h.api('GET', `/api/v1/bots/${created.body.id}`);
    expect(fetched.status).toBe(200);
    expect(fetched.body).toEqual(created.body);
    expect(fetched.body.createdAt).toMatch(ISO_MS);

    // An upper-case spelling of the same id names the same bot.
    const upper = await h.api('GET', `/api/v1/bots/${String(created.body.id).toUpperCase()}`);
    expect(upper.status).toBe(200);
    expect(upper.body.id).toBe(created.body.id);
  });

  it('defaults the timezone to UTC, and never echoes the Telegram token', async () => {
    const token = '123456789:AAHfakeTokenForTestsOnly_abcdefXYZ';
    const created = await h.api('POST', '/api/v1/bots', { name: 'with token', telegramToken: token });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ timezone: 'UTC', hasTelegramToken: true });
    const fetched = await h.api('GET', `/api/v1/bots/${created.body.id}`);
    expect(JSON.stringify(created.body)).not.toContain(token);
    expect(JSON.stringify(fetched.body)).not.toContain(token);
    expect(fetched.body.hasTelegramToken).toBe(true);
  });

  it('refuses invalid bodies with 400 naming the param, and creates nothing', async () => {
    const before = Number((await h.db('bots').count<{ count: string }[]>('* as count'))[0]!.count);
    expectApiError(await h.api('POST', '/api/v1/bots', {}), 400, 'invalid_body', 'name');
    expectApiError(await h.api('POST', '/api/v1/bots', { name: '   ' }), 400, 'invalid_body', 'name');
    expectApiError(await h.api('POST', '/api/v1/bots', { name: 42 }), 400, 'invalid_body', 'name');
    expectApiError(
      await h.api('POST', '/api/v1/bots', { name: 'x', telegramToken: 'not-a-token' }),
      400,
      'invalid_body',
      'telegramToken',
    );
    expectApiError(
      await h.api('POST', '/api/v1/bots', { name: 'x', timezone: 'Mars/Olympus_Mons' }),
      400,
      'invalid_body',
      'timezone',
    );
    expectApiError(
      await h.api('POST', '/api/v1/bots', { name: 'x', timezone: 'UTC+25' }),
      400,
      'invalid_body',
      'timezone',
    );
    expectApiError(await h.api('POST', '/api/v1/bots', { name: 'x', timezone: 7 }), 400, 'invalid_body', 'timezone');
    const unknownKey = await h.api('POST', '/api/v1/bots', { name: 'x', colour: 'red' });
    expectApiError(unknownKey, 400, 'invalid_body');
    expect(unknownKey.body.error.message).toContain('colour');

    const notJson = await raw('POST', '/api/v1/bots', auth, '{"name":');
    expectApiError(notJson, 400, 'invalid_json');
    const array = await raw('POST', '/api/v1/bots', auth, '["x"]');
    expectApiError(array, 400, 'invalid_json');
    const empty = await raw('POST', '/api/v1/bots', auth, '');
    expectApiError(empty, 400, 'invalid_json');

    const after = Number((await h.db('bots').count<{ count: string }[]>('* as count'))[0]!.count);
    expect(after).toBe(before);
  });

  it('answers 404 for an unknown bot and for an id that is not a UUID', async () => {
    expectApiError(await h.api('GET', `/api/v1/bots/${randomUUID()}`), 404, 'unknown_bot', 'botId');
    expectApiError(await h.api('GET', '/api/v1/bots/not-a-uuid'), 404, 'unknown_bot', 'botId');
    expectApiError(await h.api('GET', "/api/v1/bots/1'%20OR%20'1'='1"), 404, 'unknown_bot', 'botId');
    // Every sub-resource of an unknown bot is 404 too, before its body is looked at.
    const ghost = randomUUID();
    expectApiError(
      await h.api('PUT', `/api/v1/bots/${ghost}/fields/score`, { name: 'S', type: 'number' }),
      404,
      'unknown_bot',
    );
    expectApiError(await h.api('POST', `/api/v1/bots/${ghost}/webhooks`, { name: 'w' }), 404, 'unknown_bot');
    expectApiError(await h.api('GET', `/api/v1/bots/${ghost}/webhooks`), 404, 'unknown_bot');
    expectApiError(
      await h.api('PUT', `/api/v1/bots/${ghost}/script`, {
        start: 'a',
        steps: [{ key: 'a', type: 'send_message', text: 'x' }],
      }),
      404,
      'unknown_bot',
    );
    expectApiError(await h.api('GET', `/api/v1/bots/${ghost}/script`), 404, 'unknown_bot');
    expectApiError(await h.api('GET', `/api/v1/bots/${ghost}/dialogs/1`), 404, 'unknown_bot');
    expect(await h.db('bot_fields').where({ bot_id: ghost }).first()).toBeUndefined();
  });
});

describe('fields', () => {
  it('PUT defines a field of each type, and GET lists them', async () => {
    const botId = await createBot();
    const definitions = [
      { key: 'note', name: 'Note', type: 'text' },
      { key: 'userBalance', name: 'Balance', type: 'number' },
      { key: 'birthday', name: 'Birthday', type: 'date' },
      { key: 'landing', name: 'Landing', type: 'link' },
      { key: 'plan', name: 'Plan', type: 'select', options: ['free', 'pro'] },
      { key: 'interests', name: 'Interests', type: 'multiselect', options: ['crypto', 'forex', 'sports'] },
    ];
    for (const { key, ...body } of definitions) {
      const res = await h.api('PUT', `/api/v1/bots/${botId}/fields/${key}`, body);
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ key, name: body.name, type: body.type, options: body.options ?? null });
    }
    const listed = await h.api('GET', `/api/v1/bots/${botId}/fields`);
    expect(listed.status).toBe(200);
    expect(listed.body.fields).toHaveLength(definitions.length);
    for (const { key, ...body } of definitions) {
      expect(listed.body.fields).toContainEqual({
        key,
        name: body.name,
        type: body.type,
        options: body.options ?? null,
      });
    }
    // Another bot has none of them.
    const other = await createBot();
    expect((await h.api('GET', `/api/v1/bots/${other}/fields`)).body).toEqual({ fields: [] });
  });

  it('refuses a select or multiselect without options, an unknown type and a bad body (400 naming the param)', async () => {
    const botId = await createBot();
    expectApiError(
      await h.api('PUT', `/api/v1/bots/${botId}/fields/plan`, { name: 'Plan', type: 'select' }),
      400,
      'invalid_body',
      'options',
    );
    expectApiError(
      await h.api('PUT', `/api/v1/bots/${botId}/fields/plan`, { name: 'Plan', type: 'select', options: [] }),
      400,
      'invalid_body',
      'options',
    );
    expectApiError(
      await h.api('PUT', `/api/v1/bots/${botId}/fields/tags2`, { name: 'T', type: 'multiselect' }),
      400,
      'invalid_body',
      'options',
    );
    expectApiError(
      await h.api('PUT', `/api/v1/bots/${botId}/fields/plan`, { name: 'Plan', type: 'boolean' }),
      400,
      'invalid_body',
      'type',
    );
    expectApiError(
      await h.api('PUT', `/api/v1/bots/${botId}/fields/plan`, { type: 'text' }),
      400,
      'invalid_body',
      'name',
    );
    expect((await h.api('GET', `/api/v1/bots/${botId}/fields`)).body).toEqual({ fields: [] });
  });

  it('refuses a bad key with 400 naming the key', async () => {
    const botId = await createBot();
    for (const key of ['bad%20key', '__proto__', 'constructor', 'a'.repeat(65), 'semi%3Bcolon', '%C3%A9t%C3%A9']) {
      const res = await h.api('PUT', `/api/v1/bots/${botId}/fields/${key}`, { name: 'X', type: 'text' });
      expectApiError(res, 400, 'invalid_key', 'key');
    }
    expect(
      (await h.api('PUT', `/api/v1/bots/${botId}/fields/${'a'.repeat(64)}`, { name: 'X', type: 'text' })).status,
    ).toBe(200);
    expect((await h.api('PUT', `/api/v1/bots/${botId}/fields/a.b-c_D9`, { name: 'X', type: 'text' })).status).toBe(200);
    const listed = await h.api('GET', `/api/v1/bots/${botId}/fields`);
    expect(listed.body.fields.map((f: { key: string }) => f.key).sort()).toEqual(['a'.repeat(64), 'a.b-c_D9'].sort());
  });

  it('a second PUT of the same key replaces the definition, and postbacks follow the new type', async () => {
    const { botId, url } = await createBotWithEndpoint(h);
    const path = `/api/v1/bots/${botId}/fields/score`;
    expect((await h.api('PUT', path, { name: 'Score', type: 'number' })).status).toBe(200);
    const refused = await fetch(`${url}?chatId=5&score=high`);
    expect(refused.status).toBe(422);
    expect((await refused.json()).error).toMatchObject({ code: 'invalid_field_value', param: 'fields.score' });

    const changed = await h.api('PUT', path, { name: 'Score (text)', type: 'text' });
    expect(changed.status).toBe(200);
    expect(changed.body).toEqual({ key: 'score', name: 'Score (text)', type: 'text', options: null });
    expect((await fetch(`${url}?chatId=5&score=high`)).status).toBe(202);

    const toSelect = await h.api('PUT', path, { name: 'Score', type: 'select', options: ['low', 'high'] });
    expect(toSelect.status).toBe(200);
    expect((await fetch(`${url}?chatId=5&score=medium`)).status).toBe(422);
    expect((await fetch(`${url}?chatId=5&score=high`)).status).toBe(202);

    const listed = await h.api('GET', `/api/v1/bots/${botId}/fields`);
    expect(listed.body.fields).toEqual([{ key: 'score', name: 'Score', type: 'select', options: ['low', 'high'] }]);
  });
});

describe('webhooks', () => {
  it('POST creates a webhook: 201 with a UUID v4 id and its postback URL under PUBLIC_URL', async () => {
    const botId = await createBot();
    const res = await h.api('POST', `/api/v1/bots/${botId}/webhooks`, { name: 'keitaro' });
    expect(res.status).toBe(201);
    expect(res.body.id).toMatch(UUID_V4);
    expect(res.body.url).toBe(`${PUBLIC_URL}/api/bots/webhooks/${res.body.id}/updateDialog`);
    expect(res.body.name).toBe('keitaro');
    // The URL works (on this web tier).
    expect((await fetch(`${h.baseUrl}/api/bots/webhooks/${res.body.id}/updateDialog?chatId=1`)).status).toBe(202);
  });

  it('refuses a webhook without a name or with a bad rate limit', async () => {
    const botId = await createBot();
    expectApiError(await h.api('POST', `/api/v1/bots/${botId}/webhooks`, {}), 400, 'invalid_body', 'name');
    expectApiError(
      await h.api('POST', `/api/v1/bots/${botId}/webhooks`, { name: 'w', rateLimit: 0 }),
      400,
      'invalid_body',
      'rateLimit',
    );
    expectApiError(
      await h.api('POST', `/api/v1/bots/${botId}/webhooks`, { name: 'w', rateLimit: 'fast' }),
      400,
      'invalid_body',
      'rateLimit',
    );
    expect((await h.api('GET', `/api/v1/bots/${botId}/webhooks`)).body).toEqual({ webhooks: [] });
  });

  it("GET lists the bot's webhooks, and only its own", async () => {
    const botId = await createBot();
    const other = await createBot();
    expect((await h.api('GET', `/api/v1/bots/${botId}/webhooks`)).body).toEqual({ webhooks: [] });
    const a = (await h.api('POST', `/api/v1/bots/${botId}/webhooks`, { name: 'keitaro' })).body;
    const b = (await h.api('POST', `/api/v1/bots/${botId}/webhooks`, { name: 'binom', rateLimit: 10 })).body;
    await h.api('POST', `/api/v1/bots/${other}/webhooks`, { name: 'elsewhere' });

    const listed = await h.api('GET', `/api/v1/bots/${botId}/webhooks`);
    expect(listed.status).toBe(200);
    expect(listed.body.webhooks).toHaveLength(2);
    expect(listed.body.webhooks).toContainEqual(expect.objectContaining({ id: a.id, name: 'keitaro', url: a.url }));
    expect(listed.body.webhooks).toContainEqual(
      expect.objectContaining({ id: b.id, name: 'binom', url: b.url, rateLimit: 10 }),
    );
  });

  it('DELETE answers 204, the URL then answers 404, and a second DELETE answers 404', async () => {
    const { botId, endpointId, url } = await createBotWithEndpoint(h);
    expect((await fetch(`${url}?chatId=1`)).status).toBe(202); // cached as live on this web tier
    const deleted = await raw('DELETE', `/api/v1/bots/${botId}/webhooks/${endpointId}`, auth);
    expect(deleted.status).toBe(204);
    expect(deleted.text).toBe('');
    const postback = await fetch(`${url}?chatId=1`);
    expect(postback.status).toBe(404);
    expect((await postback.json()).error.code).toBe('unknown_webhook');
    expect((await h.api('GET', `/api/v1/bots/${botId}/webhooks`)).body).toEqual({ webhooks: [] });

    expectApiError(await h.api('DELETE', `/api/v1/bots/${botId}/webhooks/${endpointId}`), 404, 'unknown_webhook', 'id');
    expectApiError(await h.api('DELETE', `/api/v1/bots/${botId}/webhooks/not-a-uuid`), 404, 'unknown_webhook', 'id');
  });

  it('a webhook of another bot cannot be deleted through this bot', async () => {
    const mine = await createBot();
    const theirs = await createBotWithEndpoint(h);
    expectApiError(
      await h.api('DELETE', `/api/v1/bots/${mine}/webhooks/${theirs.endpointId}`),
      404,
      'unknown_webhook',
      'id',
    );
    const listed = await h.api('GET', `/api/v1/bots/${theirs.botId}/webhooks`);
    expect(listed.body.webhooks.map((w: { id: string }) => w.id)).toEqual([theirs.endpointId]);
    expect((await fetch(`${theirs.url}?chatId=1`)).status).toBe(202);
  });
});

describe('script', () => {
  it("PUT stores a valid script and answers 200 with every step's key and id", async () => {
    const botId = await createBot();
    const res = await h.api('PUT', `/api/v1/bots/${botId}/script`, {
      start: 'welcome',
      steps: [
        {
          key: 'welcome',
          type: 'send_message',
          text: 'Hello, {{name}}!',
          buttons: [{ text: 'Go', next: 'offer' }],
          next: 'wait',
        },
        { key: 'wait', type: 'delay', seconds: 60, next: 'offer' },
        { key: 'offer', type: 'send_message', text: 'https://partner.example/signup?sub1={{tracker.clickid}}' },
      ],
    });
    expect(res.status).toBe(200);
    expect(Object.keys(res.body)).toEqual(['steps']);
    expect(res.body.steps.map((s: { key: string }) => s.key)).toEqual(['welcome', 'wait', 'offer']);
    for (const step of res.body.steps) {
      expect(Object.keys(step).sort()).toEqual(['id', 'key']);
      expect(step.id).toMatch(UUID_V4);
    }
    expect(new Set(res.body.steps.map((s: { id: string }) => s.id)).size).toBe(3);
  });

  it('a re-upload keeps the id of every key that stays, gives new keys new ids and drops removed steps', async () => {
    const botId = await createBot();
    const first = await uploadScript(botId, ['a', 'b', 'c']);
    const second = await uploadScript(botId, ['c', 'a', 'd']);
    expect(second.get('a')).toBe(first.get('a'));
    expect(second.get('c')).toBe(first.get('c'));
    expect(second.get('d')).toMatch(UUID_V4);
    expect([...first.values()]).not.toContain(second.get('d'));
    expect(second.has('b')).toBe(false);

    const got = await h.api('GET', `/api/v1/bots/${botId}/script`);
    expect(got.status).toBe(200);
    expect(got.body.start).toBe('c');
    expect(got.body.steps.map((s: { key: string; id: string }) => [s.key, s.id])).toEqual([
      ['c', first.get('c')],
      ['a', first.get('a')],
      ['d', second.get('d')],
    ]);
    expect(
      await h
        .db('script_steps')
        .where({ id: first.get('b')! })
        .first(),
    ).toBeUndefined();

    // A third upload with the same keys changes nothing about the ids.
    const third = await uploadScript(botId, ['c', 'a', 'd']);
    expect([...third.entries()]).toEqual([...second.entries()]);
  });

  it('GET returns the start and the steps with their ids and definitions', async () => {
    const botId = await createBot();
    expect((await h.api('GET', `/api/v1/bots/${botId}/script`)).body).toEqual({ start: null, steps: [] });
    const steps = [
      { key: 'ask', type: 'input', text: 'Your e-mail?', field: 'email', next: 'tag' },
      { key: 'tag', type: 'change_tags', add: ['lead'], finishStatus: 'manual' },
    ];
    const put = await h.api('PUT', `/api/v1/bots/${botId}/script`, { start: 'ask', steps });
    expect(put.status).toBe(200);
    const got = await h.api('GET', `/api/v1/bots/${botId}/script`);
    expect(got.body).toEqual({
      start: 'ask',
      steps: steps.map((step, i) => ({ id: put.body.steps[i].id, ...step })),
    });
  });

  it('refuses an invalid document whole with 422 listing every problem with its step key', async () => {
    const botId = await createBot();
    const before = await uploadScript(botId, ['keep']);
    const res = await h.api('PUT', `/api/v1/bots/${botId}/script`, {
      start: 'a',
      steps: [
        { key: 'a', type: 'send_message', text: 'hi', next: 'missing' },
        { key: 'b', type: 'delay', seconds: -1 },
        { key: 'c', type: 'bogus' },
        { key: 'd', type: 'send_message', text: 'fine' },
      ],
    });
    expectApiError(res, 422, 'invalid_script');
    const problems = res.body.error.problems as Array<{ step?: string; path: string; message: string }>;
    expect(Array.isArray(problems)).toBe(true);
    expect(problems).toContainEqual(expect.objectContaining({ step: 'a', path: 'steps[0].next' }));
    expect(problems).toContainEqual(expect.objectContaining({ step: 'b', path: 'steps[1].seconds' }));
    expect(problems).toContainEqual(expect.objectContaining({ step: 'c', path: 'steps[2].type' }));
    expect(problems.some((p) => p.step === 'd')).toBe(false);
    expect(problems).toHaveLength(3);
    expect(res.body.error.message).toContain('3 problems');

    // Nothing of it was stored.
    const got = await h.api('GET', `/api/v1/bots/${botId}/script`);
    expect(got.body.start).toBe('keep');
    expect(got.body.steps.map((s: { key: string; id: string }) => [s.key, s.id])).toEqual([
      ['keep', before.get('keep')],
    ]);
  });

  it('refuses a document that is not a script at all', async () => {
    const botId = await createBot();
    const res = await h.api('PUT', `/api/v1/bots/${botId}/script`, { steps: 'none' });
    expectApiError(res, 422, 'invalid_script');
    expect(res.body.error.problems.length).toBeGreaterThan(0);
    expectApiError(await raw('PUT', `/api/v1/bots/${botId}/script`, auth, 'not json'), 400, 'invalid_json');
  });

  it('refuses a template that does not compile, naming the step', async () => {
    const botId = await createBot();
    const res = await h.api('PUT', `/api/v1/bots/${botId}/script`, {
      start: 'a',
      steps: [
        { key: 'a', type: 'send_message', text: '{{#if name}}unclosed', next: 'b' },
        { key: 'b', type: 'send_message', text: '{{lookup this "constructor"}}', next: 'c' },
        { key: 'c', type: 'send_webhook', method: 'POST', url: 'https://t.example/{{chatId', body: '{}' },
      ],
    });
    expectApiError(res, 422, 'invalid_script');
    const problems = res.body.error.problems as Array<{ step?: string; path: string }>;
    expect(problems).toContainEqual(expect.objectContaining({ step: 'a', path: 'steps[0].text' }));
    expect(problems).toContainEqual(expect.objectContaining({ step: 'b', path: 'steps[1].text' }));
    expect(problems).toContainEqual(expect.objectContaining({ step: 'c', path: 'steps[2].url' }));
    expect((await h.api('GET', `/api/v1/bots/${botId}/script`)).body).toEqual({ start: null, steps: [] });
  });

  it('postbacks can move to a new step at once, and no longer to a removed one', async () => {
    const { botId, url } = await createBotWithEndpoint(h);
    await uploadScript(botId, ['a', 'b']);
    expect((await fetch(`${url}?chatId=3&stepId=b`)).status).toBe(202);
    await uploadScript(botId, ['a', 'c']);
    expect((await fetch(`${url}?chatId=3&stepId=c`)).status).toBe(202);
    const gone = await fetch(`${url}?chatId=3&stepId=b`);
    expect(gone.status).toBe(422);
    expect((await gone.json()).error.code).toBe('unknown_step');
  });
});

describe('dialogs', () => {
  it('GET shows a dialog once a postback has been applied', async () => {
    const { botId, url } = await createBotWithEndpoint(h);
    expect(
      (await h.api('PUT', `/api/v1/bots/${botId}/fields/userBalance`, { name: 'Balance', type: 'number' })).status,
    ).toBe(200);
    const steps = await uploadScript(botId, ['welcome', 'deposit']);
    const chatId = -1001234567890;
    const before = Date.now();
    const res = await fetch(
      `${url}?chatId=${chatId}&stepId=deposit&userBalance=5000&refID=12345&tracker.clickid=abc123&tags=lead,fb&status=manual`,
    );
    expect(res.status).toBe(202);

    // The step move is handled in the dialog's order of inputs, right after the values are merged.
    const dialog = await waitFor(
      async () => {
        const found = await h.api('GET', `/api/v1/bots/${botId}/dialogs/${chatId}`);
        return found.status === 200 && found.body.stepId ? found.body : null;
      },
      10_000,
      'the dialog',
    );
    expect(Object.keys(dialog).sort()).toEqual(
      [
        'chatId',
        'username',
        'name',
        'status',
        'stepId',
        'stepKey',
        'manualReason',
        'fields',
        'tracker',
        'tags',
        'createdAt',
        'startedAt',
        'firstClickId',
        'latestClickId',
        'conversions',
      ].sort(),
    );
    expect(dialog).toMatchObject({ firstClickId: null, latestClickId: null, conversions: [] });
    expect(dialog).toMatchObject({
      chatId,
      username: null,
      name: null,
      status: 'manual',
      stepId: steps.get('deposit'),
      stepKey: 'deposit',
      fields: { userBalance: 5000, refID: '12345' },
      tracker: { clickid: 'abc123' },
      startedAt: null,
    });
    expect([...dialog.tags].sort()).toEqual(['fb', 'lead']);
    expect(dialog.createdAt).toMatch(ISO_MS);
    expect(Math.abs(Date.parse(dialog.createdAt) - before)).toBeLessThan(60_000);

    // The same chat of another bot is another dialog.
    const other = await createBot();
    expectApiError(await h.api('GET', `/api/v1/bots/${other}/dialogs/${chatId}`), 404, 'unknown_dialog', 'chatId');
  });

  it('answers 404 for an unknown dialog and 400 for a bad chatId', async () => {
    const botId = await createBot();
    expectApiError(await h.api('GET', `/api/v1/bots/${botId}/dialogs/42`), 404, 'unknown_dialog', 'chatId');
    expectApiError(await h.api('GET', `/api/v1/bots/${botId}/dialogs/-42`), 404, 'unknown_dialog', 'chatId');
    for (const bad of ['abc', '1.5', '1e5', '99999999999999999', '9007199254740993', '%20', '--1']) {
      expectApiError(await h.api('GET', `/api/v1/bots/${botId}/dialogs/${bad}`), 400, 'invalid_chat_id', 'chatId');
    }
  });
});

/** Every management call that exists, against real resources so that only the key decides. */
async function everyRoute(): Promise<Array<{ method: string; path: string; body?: unknown; ok: number }>> {
  const { botId, endpointId } = await createBotWithEndpoint(h);
  const steps = await uploadScript(botId, ['a']);
  expect(steps.size).toBe(1);
  const url = `${h.baseUrl}/api/bots/webhooks/${endpointId}/updateDialog`;
  expect((await fetch(`${url}?chatId=8`)).status).toBe(202);
  await waitFor(async () => (await h.api('GET', `/api/v1/bots/${botId}/dialogs/8`)).status === 200);
  return [
    { method: 'POST', path: '/api/v1/bots', body: { name: 'auth' }, ok: 201 },
    { method: 'GET', path: `/api/v1/bots/${botId}`, ok: 200 },
    { method: 'PUT', path: `/api/v1/bots/${botId}/fields/score`, body: { name: 'S', type: 'number' }, ok: 200 },
    { method: 'GET', path: `/api/v1/bots/${botId}/fields`, ok: 200 },
    { method: 'POST', path: `/api/v1/bots/${botId}/webhooks`, body: { name: 'w' }, ok: 201 },
    { method: 'GET', path: `/api/v1/bots/${botId}/webhooks`, ok: 200 },
    {
      method: 'PUT',
      path: `/api/v1/bots/${botId}/script`,
      body: { start: 'a', steps: [{ key: 'a', type: 'send_message', text: 'changed' }] },
      ok: 200,
    },
    { method: 'GET', path: `/api/v1/bots/${botId}/script`, ok: 200 },
    { method: 'GET', path: `/api/v1/bots/${botId}/dialogs/8`, ok: 200 },
    { method: 'DELETE', path: `/api/v1/bots/${botId}/webhooks/${endpointId}`, ok: 204 },
  ];
}

describe('authentication', () => {
  it('every route answers 401 without the right Bearer key, changes nothing, and works with it', async () => {
    const routes = await everyRoute();
    const badHeaders: Array<[string, Record<string, string>]> = [
      ['no header', {}],
      ['a wrong key', { authorization: 'Bearer wrong-key-0123456789abcdef' }],
      ['the key with a suffix', { authorization: `Bearer ${ADMIN_KEY}x` }],
      ['a prefix of the key', { authorization: `Bearer ${ADMIN_KEY.slice(0, -1)}` }],
      ['an empty Bearer', { authorization: 'Bearer ' }],
      [
        'Basic with the key as password',
        { authorization: `Basic ${Buffer.from(`admin:${ADMIN_KEY}`).toString('base64')}` },
      ],
      ['Basic with the key', { authorization: `Basic ${ADMIN_KEY}` }],
      ['the bare key', { authorization: ADMIN_KEY }],
      ['the key in another header', { 'x-api-key': ADMIN_KEY }],
    ];
    const botsBefore = Number((await h.db('bots').count<{ count: string }[]>('* as count'))[0]!.count);
    const endpointsBefore = Number(
      (await h.db('postback_endpoints').count<{ count: string }[]>('* as count'))[0]!.count,
    );
    for (const route of routes) {
      for (const [label, headers] of badHeaders) {
        const res = await raw(
          route.method,
          route.path,
          { 'content-type': 'application/json', ...headers },
          route.body === undefined ? undefined : JSON.stringify(route.body),
        );
        expect(res.status, `${route.method} ${route.path} with ${label}`).toBe(401);
        expect(res.body, `${route.method} ${route.path} with ${label}`).toMatchObject({
          ok: false,
          error: { code: 'unauthorized' },
        });
        expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
      }
    }
    // Nothing the refused calls asked for happened.
    expect(Number((await h.db('bots').count<{ count: string }[]>('* as count'))[0]!.count)).toBe(botsBefore);
    expect(Number((await h.db('postback_endpoints').count<{ count: string }[]>('* as count'))[0]!.count)).toBe(
      endpointsBefore,
    );
    const botId = routes[1]!.path.split('/')[4]!;
    expect(await h.db('bot_fields').where({ bot_id: botId }).first()).toBeUndefined();
    expect((await h.api('GET', `/api/v1/bots/${botId}/script`)).body.steps[0].text).toBe('step a');

    for (const route of routes) {
      const res = await raw(
        route.method,
        route.path,
        auth,
        route.body === undefined ? undefined : JSON.stringify(route.body),
      );
      expect(res.status, `${route.method} ${route.path} with the key`).toBe(route.ok);
    }
    // The scheme is case-insensitive, as RFC 7235 says.
    expect((await raw('GET', routes[1]!.path, { authorization: `bearer ${ADMIN_KEY}` })).status).toBe(200);
  });

  it('every route the management router has, found by walking it, answers 401 without the key', async () => {
    // The list above names routes by hand; this walk covers every route added since, with a real bot's id.
    const botId = await createBot();
    const router = managementRouter({ publicUrl: PUBLIC_URL } as ManagementDeps, ADMIN_KEY);
    let checked = 0;
    for (const layer of router.stack) {
      for (const method of layer.methods.filter((m) => m !== 'HEAD')) {
        const path = String(layer.path).replace(/:(\w+)/g, (_, name: string) =>
          name === 'botId' ? botId : name === 'id' ? randomUUID() : '1',
        );
        const res = await raw(
          method,
          path,
          { 'content-type': 'application/json' },
          method === 'GET' ? undefined : '{}',
        );
        expect(res.status, `${method} ${path}`).toBe(401);
        expect(res.body?.error?.code, `${method} ${path}`).toBe('unauthorized');
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(38);
    expect((await h.api('GET', `/api/v1/bots/${botId}`)).status).toBe(200);
  });

  it('an unauthenticated request to an unknown bot is 401, not 404', async () => {
    const res = await raw('GET', `/api/v1/bots/${randomUUID()}`);
    expect(res.status).toBe(401);
    const notUuid = await raw('GET', '/api/v1/bots/nope/script');
    expect(notUuid.status).toBe(401);
  });
});

describe('routes and health', () => {
  it('unknown routes answer 404 in the JSON error shape', async () => {
    for (const path of ['/nope', '/api/v2/bots', '/api/v1/nope', '/api/v1/bots/x/y/z/w']) {
      const res = await raw('GET', path, auth);
      expect(res.status, path).toBe(404);
      expect(res.headers.get('content-type')).toMatch(/application\/json/);
      expect(res.body).toMatchObject({ ok: false, error: { code: expect.any(String) } });
    }
    expect((await raw('GET', '/nope')).body).toMatchObject({ ok: false, error: { code: 'not_found' } });
  });

  it('/healthz answers 200, /readyz 200 when Postgres and Redis answer', async () => {
    const health = await raw('GET', '/healthz');
    expect(health.status).toBe(200);
    expect(health.body).toEqual({ ok: true });
    const ready = await raw('GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body).toEqual({ ok: true, checks: { postgres: { ok: true }, redis: { ok: true } } });
  });

  it('/readyz answers 503 when Redis or Postgres does not answer', async () => {
    const log = createLogger('silent');
    const noRedis = await startWebTier(testConfig({ REDIS_URL: 'redis://127.0.0.1:1' }), h.db, log);
    try {
      const res = await fetch(`http://127.0.0.1:${noRedis.port}/readyz`);
      expect(res.status).toBe(503);
      expect(await res.json()).toMatchObject({ ok: false, checks: { redis: { ok: false } } });
      expect((await fetch(`http://127.0.0.1:${noRedis.port}/healthz`)).status).toBe(200);
    } finally {
      await noRedis.close();
    }
    const deadDb = createDb('postgres://postgres@127.0.0.1:1/flowpost');
    const noPostgres = await startWebTier(h.config, deadDb, log);
    try {
      const res = await fetch(`http://127.0.0.1:${noPostgres.port}/readyz`);
      expect(res.status).toBe(503);
      expect(await res.json()).toMatchObject({ ok: false, checks: { postgres: { ok: false } } });
    } finally {
      await noPostgres.close();
      await deadDb.destroy();
    }
  });
});
