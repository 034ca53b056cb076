import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectApiError, startHarness, type Harness } from '../support/harness.js';

const PUBLIC_URL = 'https://flowpost.example.com';
const CAMPAIGN_ID = /^[A-Za-z0-9]{10}$/;
const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const BROWSER = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ env: { PUBLIC_URL } });
});
afterAll(async () => {
  await h?.close();
});

let nextTelegramId = 7_100_000;

/** A bot with a Telegram token (the fake Bot API names it `bot<id>`), and optionally a script. */
async function createBot(stepKeys: string[] = []): Promise<{ botId: string; username: string }> {
  const telegramId = nextTelegramId++;
  const res = await h.api('POST', '/api/v1/bots', {
    name: 'campaign bot',
    telegramToken: `${telegramId}:AAHfakeTokenForCampaignTests_${telegramId}`,
  });
  expect(res.status).toBe(201);
  const botId = res.body.id as string;
  if (stepKeys.length > 0) {
    const script = await h.api('PUT', `/api/v1/bots/${botId}/script`, {
      start: stepKeys[0],
      steps: stepKeys.map((key) => ({ key, type: 'send_message', text: `step ${key}` })),
    });
    expect(script.status).toBe(200);
  }
  return { botId, username: `bot${telegramId}` };
}

async function createCampaign(botId: string, body: Record<string, unknown>): Promise<any> {
  const res = await h.api('POST', `/api/v1/bots/${botId}/campaigns`, body);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
}

interface Visit {
  status: number;
  location: string | null;
  cacheControl: string | null;
  body: any;
}

/** Follows a campaign link as a visitor would, without following the redirect. */
async function visit(path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Visit> {
  const response = await fetch(`${h.baseUrl}${path}`, {
    method,
    redirect: 'manual',
    headers: { 'user-agent': BROWSER, ...headers },
  });
  const text = await response.text();
  let body: unknown = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = text;
  }
  return {
    status: response.status,
    location: response.headers.get('location'),
    cacheControl: response.headers.get('cache-control'),
    body,
  };
}

interface ClickRow {
  id: string;
  token: string;
  clickid: string;
  fields: Record<string, string>;
  ad: Record<string, string>;
  created_at: Date;
}

function clicksOf(campaignId: string): Promise<ClickRow[]> {
  return h.db('clicks').where({ campaign_id: campaignId }).orderBy('created_at').select<ClickRow[]>('*');
}

/** The token a `?start=c_<token>` redirect carries. */
function tokenOf(location: string | null, username: string): string {
  const match = new RegExp(`^https://t\\.me/${username}\\?start=c_([A-Za-z0-9]{16})$`).exec(location ?? '');
  expect(match, `${location} is a click redirect to ${username}`).not.toBeNull();
  return match![1]!;
}

describe('campaigns: create, read, list', () => {
  it('POST creates a campaign (201) with its redirect link and its static Telegram link; GET returns it', async () => {
    const { botId, username } = await createBot(['welcome', 'offer']);
    const created = await createCampaign(botId, {
      name: '  Spring sale  ',
      params: ['utm_source', 'ad_name'],
      fields: { source: 'fb' },
      startStep: 'offer',
    });
    expect(created.id).toMatch(CAMPAIGN_ID);
    expect(created).toMatchObject({
      name: 'Spring sale',
      params: ['utm_source', 'ad_name'],
      fields: { source: 'fb' },
      startStep: 'offer',
      link: `${PUBLIC_URL}/c/${created.id}`,
      telegramLink: `https://t.me/${username}?start=k_${created.id}`,
    });
    expect(created.createdAt).toMatch(ISO_MS);

    const fetched = await h.api('GET', `/api/v1/bots/${botId}/campaigns/${created.id}`);
    expect(fetched.status).toBe(200);
    expect(fetched.body).toEqual(created);
  });

  it('defaults params and fields to empty and startStep to null (the script’s start)', async () => {
    const { botId } = await createBot();
    const created = await createCampaign(botId, { name: 'bare' });
    expect(created).toMatchObject({ params: [], fields: {}, startStep: null });
  });

  it('lists the bot’s campaigns, oldest first, and only that bot’s', async () => {
    const { botId } = await createBot();
    const other = await createBot();
    const a = await createCampaign(botId, { name: 'a' });
    const b = await createCampaign(botId, { name: 'b' });
    await createCampaign(other.botId, { name: 'elsewhere' });
    const list = await h.api('GET', `/api/v1/bots/${botId}/campaigns`);
    expect(list.status).toBe(200);
    expect(list.body.campaigns.map((c: { id: string }) => c.id)).toEqual([a.id, b.id]);
    expect(list.body.campaigns[0]).toEqual(a);
  });

  it('refuses a bot without a Telegram username with 409 bot_without_username, and creates nothing', async () => {
    const bot = await h.api('POST', '/api/v1/bots', { name: 'no token' });
    const res = await h.api('POST', `/api/v1/bots/${bot.body.id}/campaigns`, { name: 'x' });
    expectApiError(res, 409, 'bot_without_username');
    expect(res.body.error.message).toMatch(/telegram token/i);
    expect(await h.db('campaigns').where({ bot_id: bot.body.id })).toEqual([]);
  });

  it('needs the admin key', async () => {
    const { botId } = await createBot();
    const res = await fetch(`${h.baseUrl}/api/v1/bots/${botId}/campaigns`);
    expect(res.status).toBe(401);
  });
});

describe('campaigns: validation', () => {
  let botId: string;
  beforeAll(async () => {
    ({ botId } = await createBot(['welcome']));
  });
  const post = (body: unknown) => h.api('POST', `/api/v1/bots/${botId}/campaigns`, body);

  it('refuses a missing, blank or non-string name', async () => {
    expectApiError(await post({}), 400, 'invalid_body', 'name');
    expectApiError(await post({ name: '   ' }), 400, 'invalid_body', 'name');
    expectApiError(await post({ name: 7 }), 400, 'invalid_body', 'name');
    expectApiError(await post({ name: 'x'.repeat(201) }), 400, 'invalid_body', 'name');
  });

  it('refuses unknown properties and a body that is not a JSON object', async () => {
    expectApiError(await post({ name: 'x', start_step: 'welcome' }), 400, 'invalid_body');
    expectApiError(await post([1]), 400, 'invalid_json');
  });

  it('refuses params that are not keys, repeated, reserved, or more than 50', async () => {
    expectApiError(await post({ name: 'x', params: 'utm_source' }), 400, 'invalid_body', 'params');
    expectApiError(await post({ name: 'x', params: ['ok', 'has space'] }), 400, 'invalid_body', 'params.1');
    expectApiError(await post({ name: 'x', params: ['__proto__'] }), 400, 'invalid_body', 'params.0');
    expectApiError(await post({ name: 'x', params: ['a', 'b', 'a'] }), 400, 'invalid_body', 'params.2');
    for (const reserved of ['clickid', 'campaign', 'campaign_id']) {
      expectApiError(await post({ name: 'x', params: [reserved] }), 400, 'invalid_body', 'params.0');
    }
    const many = Array.from({ length: 51 }, (_, i) => `p${i}`);
    expectApiError(await post({ name: 'x', params: many }), 400, 'invalid_body', 'params');
    expect((await post({ name: 'x', params: many.slice(0, 50) })).status).toBe(201);
  });

  it('refuses fields that are not key → string (≤ 1024 characters) pairs, reserved, or more than 50', async () => {
    expectApiError(await post({ name: 'x', fields: ['a'] }), 400, 'invalid_body', 'fields');
    expectApiError(await post({ name: 'x', fields: { source: 1 } }), 400, 'invalid_body', 'fields.source');
    expectApiError(
      await post({ name: 'x', fields: { source: 'x'.repeat(1025) } }),
      400,
      'invalid_body',
      'fields.source',
    );
    expectApiError(await post({ name: 'x', fields: { 'bad key': 'v' } }), 400, 'invalid_body', 'fields.bad key');
    expectApiError(await post({ name: 'x', fields: { campaign_id: 'v' } }), 400, 'invalid_body', 'fields.campaign_id');
    const many = Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`f${i}`, 'v']));
    expectApiError(await post({ name: 'x', fields: many }), 400, 'invalid_body', 'fields');
    expect((await post({ name: 'x', fields: { source: 'x'.repeat(1024) } })).status).toBe(201);
  });

  it('refuses a startStep that is not a step key of the bot’s script (422 unknown_step)', async () => {
    expectApiError(await post({ name: 'x', startStep: 'nowhere' }), 422, 'unknown_step', 'startStep');
    expectApiError(await post({ name: 'x', startStep: 'bad key' }), 400, 'invalid_body', 'startStep');
    const noScript = await createBot();
    expectApiError(
      await h.api('POST', `/api/v1/bots/${noScript.botId}/campaigns`, { name: 'x', startStep: 'welcome' }),
      422,
      'unknown_step',
      'startStep',
    );
  });
});

describe('campaigns: update, delete, unknown ids', () => {
  it('PATCH changes any of name, params, fields, startStep; startStep null clears it', async () => {
    const { botId } = await createBot(['welcome', 'offer']);
    const created = await createCampaign(botId, { name: 'a', params: ['utm_source'], fields: { source: 'fb' } });
    const path = `/api/v1/bots/${botId}/campaigns/${created.id}`;

    const renamed = await h.api('PATCH', path, { name: 'b' });
    expect(renamed.status).toBe(200);
    expect(renamed.body).toMatchObject({ id: created.id, name: 'b', params: ['utm_source'], fields: { source: 'fb' } });

    const changed = await h.api('PATCH', path, { params: ['sub1'], fields: {}, startStep: 'offer' });
    expect(changed.body).toMatchObject({ name: 'b', params: ['sub1'], fields: {}, startStep: 'offer' });
    expect(changed.body.link).toBe(created.link);

    const cleared = await h.api('PATCH', path, { startStep: null });
    expect(cleared.body.startStep).toBeNull();
    expect((await h.api('GET', path)).body).toEqual(cleared.body);
  });

  it('PATCH validates like POST', async () => {
    const { botId } = await createBot(['welcome']);
    const created = await createCampaign(botId, { name: 'a' });
    const path = `/api/v1/bots/${botId}/campaigns/${created.id}`;
    expectApiError(await h.api('PATCH', path, { name: '' }), 400, 'invalid_body', 'name');
    expectApiError(await h.api('PATCH', path, { params: ['clickid'] }), 400, 'invalid_body', 'params.0');
    expectApiError(await h.api('PATCH', path, { fields: { a: 1 } }), 400, 'invalid_body', 'fields.a');
    expectApiError(await h.api('PATCH', path, { startStep: 'nowhere' }), 422, 'unknown_step', 'startStep');
    expectApiError(await h.api('PATCH', path, { color: 'red' }), 400, 'invalid_body');
    expect((await h.api('GET', path)).body).toEqual(created);
  });

  it('DELETE answers 204; the campaign is then gone from GET, the list and its link', async () => {
    const { botId } = await createBot();
    const created = await createCampaign(botId, { name: 'short-lived' });
    const path = `/api/v1/bots/${botId}/campaigns/${created.id}`;
    // The link works (and its campaign is cached) before the delete.
    expect((await visit(`/c/${created.id}`)).status).toBe(302);

    expect((await h.api('DELETE', path)).status).toBe(204);
    expectApiError(await h.api('GET', path), 404, 'unknown_campaign', 'id');
    expect((await h.api('GET', `/api/v1/bots/${botId}/campaigns`)).body.campaigns).toEqual([]);
    const link = await visit(`/c/${created.id}`);
    expect(link.status).toBe(404);
    expect(link.body.error.code).toBe('unknown_campaign');
    expectApiError(await h.api('DELETE', path), 404, 'unknown_campaign', 'id');
    // Its clicks stay.
    expect(await clicksOf(created.id)).toHaveLength(1);
  });

  it('answers 404 unknown_campaign for an unknown, malformed or another bot’s id, on every route', async () => {
    const { botId } = await createBot();
    const other = await createBot();
    const theirs = await createCampaign(other.botId, { name: 'theirs' });
    for (const id of [theirs.id, 'Zz00000000', 'not-an-id', 'x'.repeat(300)]) {
      const path = `/api/v1/bots/${botId}/campaigns/${id}`;
      expectApiError(await h.api('GET', path), 404, 'unknown_campaign', 'id');
      expectApiError(await h.api('PATCH', path, { name: 'mine' }), 404, 'unknown_campaign', 'id');
      expectApiError(await h.api('DELETE', path), 404, 'unknown_campaign', 'id');
      expectApiError(await h.api('GET', `${path}/stats`), 404, 'unknown_campaign', 'id');
    }
    expect((await h.api('GET', `/api/v1/bots/${other.botId}/campaigns/${theirs.id}`)).body.name).toBe('theirs');
  });
});

describe('the click redirect GET /c/{campaignId}', () => {
  it('records a click with the params found, the fixed fields and the campaign, and redirects with its token', async () => {
    const { botId, username } = await createBot();
    const campaign = await createCampaign(botId, {
      name: 'Spring sale',
      params: ['utm_source', 'ad_name', 'absent'],
      fields: { source: 'fb' },
    });
    const res = await visit(`/c/${campaign.id}?utm_source=facebook&ad_name=Ad%20%231&unlisted=x`, {
      'x-forwarded-for': '198.51.100.9',
      referer: 'https://m.facebook.com/',
    });
    expect(res.status).toBe(302);
    expect(res.cacheControl).toBe('no-store');
    const token = tokenOf(res.location, username);

    const [click, ...more] = await clicksOf(campaign.id);
    expect(more).toEqual([]);
    expect(click!.token).toBe(token);
    // No incoming click id: the click's own token is its click id.
    expect(click!.clickid).toBe(token);
    expect(click!.fields).toEqual({
      utm_source: 'facebook',
      ad_name: 'Ad #1',
      source: 'fb',
      campaign: 'Spring sale',
      campaign_id: campaign.id,
      clickid: token,
    });
    expect(click!.ad).toEqual({ ip: '198.51.100.9', user_agent: BROWSER, referer: 'https://m.facebook.com/' });
  });

  it('keeps the incoming clickid, subid, click_id or cid as the click id', async () => {
    const { botId } = await createBot();
    const campaign = await createCampaign(botId, { name: 'ids' });
    for (const [param, value] of [
      ['clickid', 'ext-clickid.1'],
      ['subid', 'ext-subid_2'],
      ['click_id', 'ext-click-id-3'],
      ['cid', 'ext-cid-4'],
    ] as const) {
      const res = await visit(`/c/${campaign.id}?${param}=${value}`);
      expect(res.status).toBe(302);
      const click = await h.db('clicks').where({ bot_id: botId, clickid: value }).first<ClickRow | undefined>();
      expect(click, param).toBeDefined();
      expect(click!.fields.clickid).toBe(value);
      expect(res.location).toContain(`start=c_${click!.token}`);
    }
    // One that does not fit [A-Za-z0-9_.-]{1,100} is replaced by a click id of flowpost's own.
    const res = await visit(`/c/${campaign.id}?clickid=${encodeURIComponent('{clickid}')}`);
    const [, , , , own] = await clicksOf(campaign.id);
    expect(res.location).toContain(`start=c_${own!.token}`);
    expect(own!.clickid).toBe(own!.token);
  });

  it('gives the same token for the same external click id, and records it once', async () => {
    const { botId, username } = await createBot();
    const campaign = await createCampaign(botId, { name: 'repeat' });
    const first = await visit(`/c/${campaign.id}?subid=net-123`);
    const second = await visit(`/c/${campaign.id}?clickid=net-123`);
    expect(tokenOf(second.location, username)).toBe(tokenOf(first.location, username));
    expect(await clicksOf(campaign.id)).toHaveLength(1);
  });

  it('builds fbc from fbclid, prefers the _fbc cookie, and keeps _fbp, ttclid and gclid for ad platforms', async () => {
    const { botId } = await createBot();
    const campaign = await createCampaign(botId, { name: 'ads' });
    const before = Date.now();
    await visit(`/c/${campaign.id}?fbclid=IwAR0xYz&ttclid=tt-9&gclid=g-9`, {
      cookie: '_fbp=fb.1.1700000000000.555; other=1',
    });
    const after = Date.now();
    await visit(`/c/${campaign.id}?fbclid=IwAR0xYz`, { cookie: '_fbc=fb.1.1600000000000.fromCookie' });
    const [built, cookie] = await clicksOf(campaign.id);

    const fbc = /^fb\.1\.(\d+)\.IwAR0xYz$/.exec(built!.ad.fbc ?? '');
    expect(fbc).not.toBeNull();
    expect(Number(fbc![1])).toBeGreaterThanOrEqual(before);
    expect(Number(fbc![1])).toBeLessThanOrEqual(after);
    expect(built!.ad).toMatchObject({
      fbclid: 'IwAR0xYz',
      fbp: 'fb.1.1700000000000.555',
      ttclid: 'tt-9',
      gclid: 'g-9',
    });
    expect(cookie!.ad.fbc).toBe('fb.1.1600000000000.fromCookie');
    // What ad platforms need is not a tracker field of the dialog.
    expect(Object.keys(built!.fields).sort()).toEqual(['campaign', 'campaign_id', 'clickid']);
  });

  it('sends link-preview crawlers (and HEAD requests) to the static link and records no click', async () => {
    const { botId, username } = await createBot();
    const campaign = await createCampaign(botId, { name: 'previews' });
    for (const agent of ['TelegramBot (like TwitterBot)', 'facebookexternalhit/1.1', 'WhatsApp/2.23.20.0']) {
      const res = await visit(`/c/${campaign.id}?clickid=crawled`, { 'user-agent': agent });
      expect(res.status, agent).toBe(302);
      expect(res.location).toBe(`https://t.me/${username}?start=k_${campaign.id}`);
    }
    const head = await visit(`/c/${campaign.id}`, {}, 'HEAD');
    expect(head.status).toBe(302);
    expect(head.location).toBe(campaign.telegramLink);
    expect(await clicksOf(campaign.id)).toEqual([]);
  });

  it('answers 404 unknown_campaign as JSON for an unknown or malformed campaign id', async () => {
    for (const id of ['Zz00000000', 'short', 'has%20space']) {
      const res = await visit(`/c/${id}`);
      expect(res.status).toBe(404);
      expect(res.body).toMatchObject({ ok: false, error: { code: 'unknown_campaign' } });
    }
  });

  it('uses a PATCHed campaign’s params and fields for the next click at once', async () => {
    const { botId } = await createBot();
    const campaign = await createCampaign(botId, { name: 'before', params: ['a'] });
    await visit(`/c/${campaign.id}?a=1&b=2`);
    await h.api('PATCH', `/api/v1/bots/${botId}/campaigns/${campaign.id}`, {
      name: 'after',
      params: ['b'],
      fields: { fixed: 'yes' },
    });
    await visit(`/c/${campaign.id}?a=1&b=2`);
    const [first, second] = await clicksOf(campaign.id);
    expect(first!.fields).toMatchObject({ a: '1', campaign: 'before' });
    expect(second!.fields).toMatchObject({ b: '2', fixed: 'yes', campaign: 'after' });
    expect(second!.fields).not.toHaveProperty('a');
  });
});

describe('campaign stats', () => {
  it('counts the clicks made and the clicks claimed, within from and to when given', async () => {
    const { botId } = await createBot();
    const campaign = await createCampaign(botId, { name: 'stats' });
    const other = await createCampaign(botId, { name: 'other' });
    const statsPath = `/api/v1/bots/${botId}/campaigns/${campaign.id}/stats`;
    expect((await h.api('GET', statsPath)).body).toEqual({ clicks: 0, starts: 0, conversions: {}, payouts: {} });

    for (let i = 0; i < 4; i++) await visit(`/c/${campaign.id}?clickid=stat-${i}`);
    await visit(`/c/${other.id}`);
    // Two of them claimed by a /start (as the worker side records it), one of them made in January.
    await h
      .db('clicks')
      .whereIn('clickid', ['stat-0', 'stat-1'])
      .update({ claimed_chat_id: 42, claimed_at: h.db.fn.now() });
    await h
      .db('clicks')
      .where({ clickid: 'stat-0' })
      .update({ created_at: new Date('2026-01-15T10:00:00Z') });
    await h
      .db('clicks')
      .where({ clickid: 'stat-2' })
      .update({ created_at: new Date('2026-02-10T10:00:00Z') });

    expect((await h.api('GET', statsPath)).body).toEqual({ clicks: 4, starts: 2, conversions: {}, payouts: {} });
    expect((await h.api('GET', `${statsPath}?from=2026-01-01&to=2026-02-01`)).body).toMatchObject({
      clicks: 1,
      starts: 1,
    });
    expect((await h.api('GET', `${statsPath}?from=2026-02-01T00:00:00Z`)).body).toMatchObject({
      clicks: 3,
      starts: 1,
    });
    expect((await h.api('GET', `${statsPath}?to=2026-02-10T10:00:00.000%2B00:00`)).body).toMatchObject({
      clicks: 1,
      starts: 1,
    });
  });

  it('refuses a from or to that is not an ISO 8601 date, naming it', async () => {
    const { botId } = await createBot();
    const campaign = await createCampaign(botId, { name: 'stats' });
    const statsPath = `/api/v1/bots/${botId}/campaigns/${campaign.id}/stats`;
    expectApiError(await h.api('GET', `${statsPath}?from=yesterday`), 400, 'invalid_from', 'from');
    expectApiError(await h.api('GET', `${statsPath}?from=2026-13-01`), 400, 'invalid_from', 'from');
    expectApiError(await h.api('GET', `${statsPath}?to=1700000000`), 400, 'invalid_to', 'to');
    expectApiError(await h.api('GET', `${statsPath}?to=2026-01-01&to=2026-02-01`), 400, 'invalid_to', 'to');
  });
});
