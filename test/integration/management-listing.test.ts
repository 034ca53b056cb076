import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY, expectApiError, startHarness, waitFor, type Harness } from '../support/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ workers: true });
});
afterAll(async () => {
  await h?.close();
});

let nextTelegramId = 7_300_000;

async function createBot(name = 'listing bot', withToken = false): Promise<string> {
  const telegramId = nextTelegramId++;
  const res = await h.api('POST', '/api/v1/bots', {
    name,
    ...(withToken ? { telegramToken: `${telegramId}:AAHfakeTokenForListingTests_${telegramId}` } : {}),
  });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.id as string;
}

async function uploadScript(botId: string, keys: string[]): Promise<Map<string, string>> {
  const res = await h.api('PUT', `/api/v1/bots/${botId}/script`, {
    start: keys[0],
    steps: keys.map((key) => ({ key, type: 'send_message', text: `step ${key}` })),
  });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return new Map(res.body.steps.map((s: { key: string; id: string }) => [s.key, s.id]));
}

interface DialogSeed {
  chatId: number;
  /** Seconds before now of the last activity. */
  age?: number;
  name?: string | null;
  username?: string | null;
  status?: string;
  stepId?: string | null;
  tags?: string[];
  fields?: Record<string, unknown>;
  started?: boolean;
  firstClickId?: string | null;
  latestClickId?: string | null;
}

async function seedDialog(botId: string, seed: DialogSeed): Promise<void> {
  await h.db('dialogs').insert({
    bot_id: botId,
    chat_id: seed.chatId,
    name: seed.name ?? null,
    username: seed.username ?? null,
    status: seed.status ?? 'auto',
    step_id: seed.stepId ?? null,
    tags: seed.tags ?? [],
    fields: JSON.stringify(seed.fields ?? {}),
    started_at: seed.started ? h.db.raw('now()') : null,
    updated_at: h.db.raw(`now() - ?::interval`, [`${seed.age ?? 0} seconds`]),
    first_click_id: seed.firstClickId ?? null,
    latest_click_id: seed.latestClickId ?? null,
  });
}

async function seedClick(botId: string, campaignId: string | null): Promise<string> {
  const token = randomUUID().replaceAll('-', '').slice(0, 16);
  const [row] = await h
    .db('clicks')
    .insert({
      bot_id: botId,
      campaign_id: campaignId,
      token,
      clickid: token,
      fields: JSON.stringify({ clickid: token }),
    })
    .returning('id');
  return (row as { id: string }).id;
}

async function list(botId: string, query = ''): Promise<{ status: number; body: any }> {
  return h.api('GET', `/api/v1/bots/${botId}/dialogs${query ? `?${query}` : ''}`);
}

async function chatIds(botId: string, query = ''): Promise<number[]> {
  const res = await list(botId, query);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body.items.map((d: { chatId: number }) => d.chatId);
}

describe('GET /api/v1/bots', () => {
  it('lists every bot with the fields GET one bot answers, never the token', async () => {
    const a = await createBot('first', true);
    const b = await createBot('second');
    const res = await h.api('GET', '/api/v1/bots');
    expect(res.status).toBe(200);
    const byId = new Map(res.body.items.map((bot: { id: string }) => [bot.id, bot]));
    for (const id of [a, b]) expect(byId.get(id)).toEqual((await h.api('GET', `/api/v1/bots/${id}`)).body);
    expect(JSON.stringify(res.body)).not.toContain('AAHfakeTokenForListingTests');
    expect((byId.get(a) as { hasTelegramToken: boolean }).hasTelegramToken).toBe(true);
  });

  it('answers 401 without the key', async () => {
    const res = await fetch(`${h.baseUrl}/api/v1/bots`);
    expect(res.status).toBe(401);
  });
});

describe('DELETE /api/v1/bots/{botId}', () => {
  it('is refused without confirm, or with another id', async () => {
    const botId = await createBot();
    expectApiError(await h.api('DELETE', `/api/v1/bots/${botId}`), 400, 'confirmation_required', 'confirm');
    expectApiError(
      await h.api('DELETE', `/api/v1/bots/${botId}?confirm=${randomUUID()}`),
      400,
      'confirmation_required',
      'confirm',
    );
    expect((await h.api('GET', `/api/v1/bots/${botId}`)).status).toBe(200);
  });

  it('deletes the bot and everything of it; its postback URL answers 404 at once', async () => {
    const botId = await createBot('doomed', true);
    const other = await createBot('kept');
    const steps = await uploadScript(botId, ['welcome', 'offer']);
    expect(
      (await h.api('PUT', `/api/v1/bots/${botId}/fields/balance`, { name: 'Balance', type: 'number' })).status,
    ).toBe(200);
    const webhook = await h.api('POST', `/api/v1/bots/${botId}/webhooks`, { name: 'tracker' });
    expect(webhook.status).toBe(201);
    const otherWebhook = await h.api('POST', `/api/v1/bots/${other}/webhooks`, { name: 'tracker' });
    const campaign = await h.api('POST', `/api/v1/bots/${botId}/campaigns`, { name: 'fb', params: ['ad'] });
    expect(campaign.status, JSON.stringify(campaign.body)).toBe(201);
    const destination = await h.api('POST', `/api/v1/bots/${botId}/destinations`, {
      name: 'keitaro',
      on: ['conversion'],
      method: 'GET',
      url: 'https://tracker.example/postback?subid={clickid}',
    });
    expect(destination.status, JSON.stringify(destination.body)).toBe(201);

    // A dialog made by a postback, through the queue and a worker.
    const postback = `${h.baseUrl}/api/bots/webhooks/${webhook.body.id}/updateDialog`;
    expect((await fetch(`${postback}?chatId=42&stepId=offer&tags=vip&balance=5`)).status).toBe(202);
    await waitFor(async () => (await h.db('dialogs').where({ bot_id: botId, chat_id: 42 }).first()) ?? null);

    const clickId = await seedClick(botId, campaign.body.id);
    await h.db('dialogs').where({ bot_id: botId, chat_id: 42 }).update({ first_click_id: clickId });
    await h.db('click_waiting_updates').insert({ click_id: clickId, seq: 1, job: '{}' });
    await h.db('dialog_messages').insert({ bot_id: botId, chat_id: 42, direction: 'in', text: 'hi' });
    const [conversion] = await h
      .db('conversions')
      .insert({ bot_id: botId, chat_id: 42, clickid: 'c1', event: 'default', tid: 't1', status: 'sale' })
      .returning('id');
    await h.db('conversion_events').insert({
      bot_id: botId,
      conversion_id: (conversion as { id: string }).id,
      clickid: 'c1',
      event: 'default',
      tid: 't1',
      status: 'sale',
      outcome: 'new',
    });
    const deliveryId = randomUUID();
    await h.db('deliveries').insert({
      id: deliveryId,
      bot_id: botId,
      message_id: `msg_${deliveryId}`,
      method: 'POST',
      url: 'https://example.com/hook',
      state: 'failed',
      attempt_count: 1,
    });
    await h
      .db('delivery_attempts')
      .insert({ delivery_id: deliveryId, attempt: 1, started_at: new Date(), duration_ms: 5 });

    // Every table holding a bot's rows, directly or under a row that does.
    const botTables: Array<{ table_name: string }> = (
      await h.db.raw(
        `select table_name from information_schema.columns
          where table_schema = 'public' and column_name = 'bot_id' order by table_name`,
      )
    ).rows;
    const children: Record<string, string> = {
      delivery_attempts: 'select count(*)::int as n from delivery_attempts where delivery_id = any(?::uuid[])',
      click_waiting_updates: 'select count(*)::int as n from click_waiting_updates where click_id = any(?::uuid[])',
    };
    const counts = async (): Promise<Record<string, number>> => {
      const result: Record<string, number> = {};
      for (const { table_name } of botTables) {
        result[table_name] = Number((await h.db(table_name).where({ bot_id: botId }).count({ n: '*' }))[0]!.n);
      }
      result.delivery_attempts = (await h.db.raw(children.delivery_attempts!, [`{${deliveryId}}`])).rows[0].n;
      result.click_waiting_updates = (await h.db.raw(children.click_waiting_updates!, [`{${clickId}}`])).rows[0].n;
      return result;
    };
    const before = await counts();
    for (const table of [
      'bots',
      'bot_fields',
      'postback_endpoints',
      'script_steps',
      'dialogs',
      'dialog_inputs',
      'dialog_messages',
      'campaigns',
      'clicks',
      'conversions',
      'conversion_events',
      'destinations',
      'deliveries',
      'delivery_attempts',
      'click_waiting_updates',
    ]) {
      if (table !== 'bots') expect(before[table], table).toBeGreaterThan(0);
    }
    expect(steps.size).toBe(2);

    // Known and cached by the web tier before the deletion.
    expect((await fetch(`${postback}?chatId=43`)).status).toBe(202);
    const { telegram_secret: secret } = await h.db('bots').where({ id: botId }).first('telegram_secret');
    let updateId = 1;
    const telegramUpdate = () =>
      fetch(`${h.baseUrl}/telegram/${botId}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': secret },
        body: JSON.stringify({
          update_id: updateId++,
          message: { message_id: 1, date: 0, chat: { id: 44, type: 'private' }, text: 'hi' },
        }),
      });
    const accepted = await telegramUpdate();
    expect(accepted.status, await accepted.text()).toBe(200);

    const res = await h.api('DELETE', `/api/v1/bots/${botId}?confirm=${botId.toUpperCase()}`);
    expect(res.status, JSON.stringify(res.body)).toBe(204);

    const after = await counts();
    for (const [table, n] of Object.entries(after)) expect(n, table).toBe(0);
    expect(await h.db('bots').where({ id: botId }).first()).toBeUndefined();

    const gone = await fetch(`${postback}?chatId=42`);
    expect(gone.status).toBe(404);
    // Its Telegram webhook is refused at once too (the web tier's view of its secret was dropped).
    const refused = await telegramUpdate();
    expect(refused.status).toBe(401);
    await refused.arrayBuffer();
    expectApiError(await h.api('GET', `/api/v1/bots/${botId}`), 404, 'unknown_bot', 'botId');
    expectApiError(await h.api('DELETE', `/api/v1/bots/${botId}?confirm=${botId}`), 404, 'unknown_bot', 'botId');
    expect((await h.api('GET', '/api/v1/bots')).body.items.map((b: { id: string }) => b.id)).not.toContain(botId);

    // The other bot is untouched.
    expect((await h.api('GET', `/api/v1/bots/${other}`)).status).toBe(200);
    const otherUrl = `${h.baseUrl}/api/bots/webhooks/${otherWebhook.body.id}/updateDialog`;
    expect((await fetch(`${otherUrl}?chatId=1`)).status).toBe(202);
  });

  it('still deletes when a worker writing one of its dialogs deadlocks with the deletion', async () => {
    const botId = await createBot('deadlocked');
    await seedDialog(botId, { chatId: 1 });
    const lockWaits = async (statement: string): Promise<number> => {
      const { rows } = await h.db.raw(
        `SELECT count(*)::int AS n FROM pg_stat_activity
         WHERE datname = current_database() AND wait_event_type = 'Lock' AND query ILIKE ?`,
        [`${statement}%`],
      );
      return rows[0].n;
    };
    const deadlocks = async (): Promise<number> => {
      const { rows } = await h.db.raw(
        `SELECT deadlocks::int AS n FROM pg_stat_database WHERE datname = current_database()`,
      );
      return rows[0].n;
    };
    const deadlocksBefore = await deadlocks();
    // A worker's write, as the dialog writers do it: a dialog's row first, then a row naming the bot.
    // Postgres fails the statement whose wait closes the cycle; the worker never looks for one here.
    const worker = await h.db.transaction();
    const holder = await h.db.transaction();
    try {
      await worker.raw(`SET LOCAL deadlock_timeout = '10min'`);
      await worker('dialogs').where({ bot_id: botId, chat_id: 1 }).update({ updated_at: worker.fn.now() });
      // The deletion waits for the bot's row, and the worker's insert queues behind it.
      await holder('bots').where({ id: botId }).forUpdate().first('id');
      const deletion = h.api('DELETE', `/api/v1/bots/${botId}?confirm=${botId}`);
      await waitFor(async () => (await lockWaits('select "id" from "bots"')) === 1, 10_000, 'the deletion to wait');
      const inserted = worker('dialogs').insert({ bot_id: botId, chat_id: 2, status: 'auto', fields: '{}', tags: [] });
      const insertDone = inserted.then(
        () => null,
        (error: unknown) => error,
      );
      await waitFor(async () => (await lockWaits('insert into "dialogs"')) === 1, 10_000, 'the worker to wait');
      // The deletion takes the bot's row, then waits for the dialog's: a deadlock, broken by failing the deletion.
      await holder.commit();
      expect(await insertDone).toBeNull();
      await worker.commit();
      const res = await deletion;
      expect(res.status, JSON.stringify(res.body)).toBe(204);
    } finally {
      if (!holder.isCompleted()) await holder.rollback();
      if (!worker.isCompleted()) await worker.rollback();
    }
    expect(Number((await h.db('dialogs').where({ bot_id: botId }).count({ n: '*' }))[0]!.n)).toBe(0);
    expect(await h.db('bots').where({ id: botId }).first()).toBeUndefined();
    await waitFor(async () => (await deadlocks()) > deadlocksBefore, 10_000, 'the deadlock to be counted');
  });
});

describe('GET /api/v1/bots/{botId}/dialogs', () => {
  let botId: string;
  let steps: Map<string, string>;
  let campaignA: string;
  let campaignB: string;

  beforeAll(async () => {
    botId = await createBot('dialogs', true);
    steps = await uploadScript(botId, ['welcome', 'offer']);
    campaignA = (await h.api('POST', `/api/v1/bots/${botId}/campaigns`, { name: 'a', params: [] })).body.id;
    campaignB = (await h.api('POST', `/api/v1/bots/${botId}/campaigns`, { name: 'b', params: [] })).body.id;
    const clickA = await seedClick(botId, campaignA);
    const clickB = await seedClick(botId, campaignB);
    const clickB2 = await seedClick(botId, campaignB);
    // A dialog of another bot never shows.
    const other = await createBot('other');
    await seedDialog(other, { chatId: 1, name: 'Alice' });

    await seedDialog(botId, {
      chatId: 1,
      age: 10,
      name: 'Alice Smith',
      username: 'alice',
      started: true,
      stepId: steps.get('welcome')!,
      tags: ['vip', 'buyer'],
      fields: { balance: 5, plan: 'gold', colors: ['red', 'blue'] },
      firstClickId: clickA,
      latestClickId: clickB,
    });
    await seedDialog(botId, {
      chatId: 2,
      age: 20,
      name: 'Bob 100%_done',
      username: 'bobby',
      status: 'manual',
      stepId: steps.get('offer')!,
      tags: ['vip'],
      fields: { balance: 7, plan: 'silver' },
      latestClickId: clickB2,
    });
    await seedDialog(botId, {
      chatId: -1003,
      age: 30,
      name: null,
      username: 'CAROL_x',
      status: 'blocked',
      started: true,
      tags: [],
      fields: { plan: 'gold' },
      firstClickId: clickA,
    });
    // Same activity time as chat 5: ordered by chat id then.
    await seedDialog(botId, { chatId: 4, age: 40, name: 'Dan', fields: { balance: 5 } });
    await seedDialog(botId, { chatId: 5, age: 40, name: 'Eve' });
    await h.db.raw(
      `update dialogs set updated_at = (select updated_at from dialogs where bot_id = ? and chat_id = 4)
        where bot_id = ? and chat_id = 5`,
      [botId, botId],
    );
  });

  it('lists newest activity first, each item as GET one dialog answers', async () => {
    const res = await list(botId);
    expect(res.status).toBe(200);
    expect(res.body.items.map((d: { chatId: number }) => d.chatId)).toEqual([1, 2, -1003, 5, 4]);
    expect(res.body.nextCursor).toBeNull();
    for (const item of res.body.items) {
      expect(item).toEqual((await h.api('GET', `/api/v1/bots/${botId}/dialogs/${item.chatId}`)).body);
    }
  });

  it('filters by status, step, tag, field, campaign, started, updatedSince and q', async () => {
    expect(await chatIds(botId, 'status=manual')).toEqual([2]);
    expect(await chatIds(botId, 'status=BLOCKED')).toEqual([-1003]);
    expect(await chatIds(botId, 'step=offer')).toEqual([2]);
    expect(await chatIds(botId, `step=${steps.get('welcome')!}`)).toEqual([1]);
    expect(await chatIds(botId, 'tag=vip')).toEqual([1, 2]);
    expect(await chatIds(botId, 'tag=vip&tag=buyer')).toEqual([1]);
    expect(await chatIds(botId, 'tag=nobody')).toEqual([]);
    expect(await chatIds(botId, 'field.plan=gold')).toEqual([1, -1003]);
    expect(await chatIds(botId, 'field.balance=5')).toEqual([1, 4]);
    expect(await chatIds(botId, 'field.colors=blue')).toEqual([1]);
    expect(await chatIds(botId, 'field.plan=gold&field.balance=5')).toEqual([1]);
    expect(await chatIds(botId, `campaign=${campaignA}`)).toEqual([1, -1003]);
    expect(await chatIds(botId, `campaign=${campaignB}`)).toEqual([1, 2]);
    expect(await chatIds(botId, 'started=true')).toEqual([1, -1003]);
    expect(await chatIds(botId, 'started=false')).toEqual([2, 5, 4]);
    const since = new Date(Date.now() - 25_000).toISOString();
    expect(await chatIds(botId, `updatedSince=${encodeURIComponent(since)}`)).toEqual([1, 2]);
    expect(await chatIds(botId, 'q=ALI')).toEqual([1]);
    expect(await chatIds(botId, 'q=carol')).toEqual([-1003]);
    expect(await chatIds(botId, `q=${encodeURIComponent('100%_')}`)).toEqual([2]);
    // Wildcards are taken literally.
    expect(await chatIds(botId, 'q=%25')).toEqual([2]);
    expect(await chatIds(botId, 'q=_')).toEqual([2, -1003]);
    expect(await chatIds(botId, `status=auto&tag=vip&campaign=${campaignB}&started=true&q=smith`)).toEqual([1]);
    expect(await chatIds(botId, `status=auto&tag=vip&campaign=${campaignA}&started=false`)).toEqual([]);
  });

  it('pages with a cursor, with no duplicates or gaps while dialogs are added', async () => {
    const seen: number[] = [];
    let cursor: string | null = null;
    let pages = 0;
    let added = 100;
    do {
      const res: { status: number; body: any } = await list(
        botId,
        `limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      );
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.body.items.length).toBeLessThanOrEqual(2);
      seen.push(...res.body.items.map((d: { chatId: number }) => d.chatId));
      cursor = res.body.nextCursor;
      pages++;
      // New activity lands before the cursor: later pages are unaffected.
      await seedDialog(botId, { chatId: added++, name: 'late' });
    } while (cursor && pages < 10);
    expect(seen).toEqual([1, 2, -1003, 5, 4]);
    expect(pages).toBe(3);
    await h.db('dialogs').where({ bot_id: botId }).where('chat_id', '>=', 100).delete();
  });

  it('refuses each bad parameter by name', async () => {
    const cases: Array<[string, string, string]> = [
      ['status=sleeping', 'status', 'invalid_status'],
      ['step=nope', 'step', 'unknown_step'],
      ['step=bad%20key', 'step', 'invalid_step'],
      ['tag=bad%20tag', 'tag', 'invalid_tag'],
      ['field.bad%20key=1', 'field.bad key', 'invalid_field_bad_key'],
      ['field.__proto__=1', 'field.__proto__', 'invalid_field___proto__'],
      ['campaign=nope', 'campaign', 'invalid_campaign'],
      ['started=yes', 'started', 'invalid_started'],
      ['updatedSince=yesterday', 'updatedSince', 'invalid_updatedSince'],
      [`q=${'x'.repeat(201)}`, 'q', 'invalid_q'],
      ['limit=0', 'limit', 'invalid_limit'],
      ['limit=201', 'limit', 'invalid_limit'],
      ['limit=ten', 'limit', 'invalid_limit'],
      ['cursor=!!', 'cursor', 'invalid_cursor'],
      [`cursor=${Buffer.from('{"a":1}').toString('base64url')}`, 'cursor', 'invalid_cursor'],
      ['status=auto&status=manual', 'status', 'invalid_status'],
      ['sort=name', 'sort', 'unknown_param'],
    ];
    for (const [query, param, code] of cases) expectApiError(await list(botId, query), 400, code, param);
  });

  it('answers 401 without the key and 404 for an unknown bot', async () => {
    expect((await fetch(`${h.baseUrl}/api/v1/bots/${botId}/dialogs`)).status).toBe(401);
    const wrong = await fetch(`${h.baseUrl}/api/v1/bots/${botId}/dialogs`, {
      headers: { authorization: `Bearer ${ADMIN_KEY}x` },
    });
    expect(wrong.status).toBe(401);
    expectApiError(await list(randomUUID()), 404, 'unknown_bot', 'botId');
  });
});
