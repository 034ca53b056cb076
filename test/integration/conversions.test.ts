import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertCampaign } from '../../src/db/campaigns.js';
import { insertClick } from '../../src/db/clicks.js';
import { readClick } from '../../src/domain/tracker/click-request.js';
import { createScriptedBot, dialogOf, sendUpdate, waitForMessages, type TestBot } from '../support/bot-scripts.js';
import { fakeUpdates } from '../support/fake-telegram.js';
import { startHarness, waitFor, type Harness } from '../support/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ workers: true, env: { TELEGRAM_CHAT_RATE_LIMIT: '0' } });
});
afterAll(async () => {
  await h?.close();
});

let chat = 620_000;
const SCRIPT = { start: 'hello', steps: [{ key: 'hello', type: 'send_message', text: 'offer {{tracker.clickid}}' }] };

async function clickFor(bot: TestBot, clickid: string) {
  const campaign = await insertCampaign(h.db, {
    botId: bot.botId,
    name: 'conv',
    params: [],
    fields: {},
    startStep: null,
  });
  const { fields } = readClick(campaign, {
    query: [],
    ip: null,
    userAgent: null,
    referer: null,
    cookies: {},
    now: new Date(),
  });
  const click = await insertClick(h.db, { botId: bot.botId, campaignId: campaign.id, clickid, fields, ad: {} });
  return { campaign, click };
}

async function claimed(bot: TestBot, clickid: string) {
  const { campaign, click } = await clickFor(bot, clickid);
  const chatId = chat++;
  await sendUpdate(h, bot, fakeUpdates.start(chatId, `c_${click.token}`));
  await waitForMessages(h, bot, chatId, 1);
  return { campaign, chatId };
}

const conversionUrl = (bot: TestBot) => bot.postbackUrl.replace(/updateDialog$/, 'conversion');

async function convert(bot: TestBot, query: string) {
  const res = await fetch(`${conversionUrl(bot)}?${query}`);
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

async function conversionsOf(bot: TestBot, chatId: number) {
  return ((await dialogOf(h, bot, chatId))?.conversions ?? []) as Array<Record<string, unknown>>;
}

describe('conversions by click id', () => {
  it('Keitaro style: a lead, then its sale; a repeat is a duplicate; a move back is ignored and recorded', async () => {
    const bot = await createScriptedBot(h, SCRIPT);
    const { campaign, chatId } = await claimed(bot, 'kt-1');

    expect((await convert(bot, 'subid=kt-1&status=lead&payout=0')).status).toBe(202);
    await waitFor(async () => (await conversionsOf(bot, chatId))[0]?.status === 'lead');
    expect((await convert(bot, 'subid=kt-1&status=sale&payout=25.50&currency=usd&fields.plan=gold')).status).toBe(202);
    await waitFor(async () => (await conversionsOf(bot, chatId))[0]?.status === 'sale');

    const [conversion] = await conversionsOf(bot, chatId);
    expect(conversion).toMatchObject({
      clickid: 'kt-1',
      event: 'default',
      tid: null,
      status: 'sale',
      payout: '25.5',
      currency: 'USD',
    });
    expect((await dialogOf(h, bot, chatId)).fields.plan).toBe('gold');

    expect(await convert(bot, 'subid=kt-1&status=sale&payout=25.5&currency=USD')).toEqual({
      status: 200,
      body: { ok: true, duplicate: true },
    });
    const back = await convert(bot, 'subid=kt-1&status=lead&payout=0');
    expect(back.status).toBe(200);
    expect(back.body).toEqual({ ok: true, ignored: 'status cannot move from sale to lead' });
    expect((await convert(bot, 'subid=kt-1&status=sale&payout=40&currency=USD')).body.ignored).toBe(
      'a repeat sale needs its own tid',
    );
    expect((await convert(bot, 'subid=kt-1&status=sale&payout=40&currency=USD&tid=T-2')).status).toBe(202);
    await waitFor(async () => (await conversionsOf(bot, chatId)).length === 2);
    expect(await convert(bot, 'subid=kt-1&status=rejected&tid=T-2')).toMatchObject({ status: 202 });
    await waitFor(async () => (await conversionsOf(bot, chatId))[1]?.status === 'rejected');

    const events = await h.db('conversion_events').where({ bot_id: bot.botId }).orderBy('id').pluck('outcome');
    expect(events).toEqual(['new', 'moved', 'ignored', 'ignored', 'new', 'moved']);

    const stats = await h.api('GET', `/api/v1/bots/${bot.botId}/campaigns/${campaign.id}/stats`);
    expect(stats.body).toMatchObject({
      clicks: 1,
      starts: 1,
      conversions: { sale: 1, rejected: 1 },
      payouts: { USD: '25.5' },
    });
  });

  it('Affise style numeric statuses are mapped by the request’s lists; a status no list maps is 422', async () => {
    const bot = await createScriptedBot(h, SCRIPT);
    const { chatId } = await claimed(bot, 'af-1');
    expect((await convert(bot, 'clickid=af-1&status=2&lead_status=2&sale_status=1,5&goal=deposit')).status).toBe(202);
    await waitFor(async () => (await conversionsOf(bot, chatId))[0]?.status === 'lead');
    expect((await convert(bot, 'clickid=af-1&status=5&lead_status=2&sale_status=1,5&goal=deposit&sum=10')).status).toBe(
      202,
    );
    await waitFor(async () => (await conversionsOf(bot, chatId))[0]?.status === 'sale');
    expect((await conversionsOf(bot, chatId))[0]).toMatchObject({ event: 'deposit', payout: '10' });
    const unmapped = await convert(bot, 'clickid=af-1&status=3&lead_status=2&sale_status=1,5');
    expect(unmapped.status).toBe(422);
    expect(unmapped.body.error).toMatchObject({ code: 'unknown_status', param: 'status' });
  });

  it('refuses what it cannot use, naming the parameter, and changes nothing', async () => {
    const bot = await createScriptedBot(h, SCRIPT);
    await claimed(bot, 'bad-1');
    const cases: Array<[string, number, string, string]> = [
      ['status=sale', 400, 'missing_clickid', 'clickid'],
      ['clickid=a%20b', 400, 'invalid_clickid', 'clickid'],
      ['clickid=nobody-1', 404, 'unknown_clickid', 'clickid'],
      ['clickid=bad-1&payout=ten', 400, 'invalid_payout', 'payout'],
      ['clickid=bad-1&currency=EURO', 400, 'invalid_currency', 'currency'],
      ['clickid=bad-1&stepId=hello', 400, 'invalid_param', 'stepId'],
      ['clickid=bad-1&chat_id=123', 400, 'invalid_param', 'chatId'],
    ];
    for (const [query, status, code, param] of cases) {
      const res = await convert(bot, query);
      expect(res.status, query).toBe(status);
      expect(res.body.error, query).toMatchObject({ code, param });
    }
    expect(await h.db('conversions').where({ bot_id: bot.botId })).toEqual([]);
  });

  it('a conversion for a click nobody has claimed yet waits on the click, and is the dialog’s when it is claimed', async () => {
    const bot = await createScriptedBot(h, SCRIPT);
    const { click } = await clickFor(bot, 'late-1');
    expect((await convert(bot, 'clickid=late-1&status=lead&fields.source=net')).status).toBe(202);
    await waitFor(async () => (await h.db('click_waiting_updates').where({ click_id: click.id }).first()) ?? null);
    expect(await h.db('conversions').where({ bot_id: bot.botId })).toEqual([]);

    const chatId = chat++;
    await sendUpdate(h, bot, fakeUpdates.start(chatId, `c_${click.token}`));
    await waitForMessages(h, bot, chatId, 1);
    await waitFor(async () => (await conversionsOf(bot, chatId))[0]?.status === 'lead');
    expect((await dialogOf(h, bot, chatId)).fields.source).toBe('net');
    expect((await dialogOf(h, bot, chatId)).firstClickId).toBe('late-1');
  });

  it('the script reacts: the first onConversion rule matching event and status sets values and runs its step, whose templates see the conversion', async () => {
    const bot = await createScriptedBot(h, {
      start: 'hello',
      steps: [
        { key: 'hello', type: 'send_message', text: 'offer {{tracker.clickid}}' },
        {
          key: 'thanks',
          type: 'send_message',
          text: 'thanks {{conversion.status}} {{conversion.payout}} {{conversion.currency}} {{conversion.event}} {{fields.vip}}',
        },
      ],
      onConversion: [
        { event: 'deposit', status: 'sale', next: 'thanks', addTags: ['buyer'], setFields: { vip: 'yes' } },
        { status: 'lead', addTags: ['lead'] },
      ],
    });
    const script = await h.api('GET', `/api/v1/bots/${bot.botId}/script`);
    expect(script.body.onConversion).toHaveLength(2);
    const { chatId } = await claimed(bot, 'rx-1');

    expect((await convert(bot, 'clickid=rx-1&status=lead')).status).toBe(202);
    await waitFor(async () => (await dialogOf(h, bot, chatId))?.tags.includes('lead'));
    expect((await convert(bot, 'clickid=rx-1&status=sale&event=deposit&payout=50&currency=USD')).status).toBe(202);
    expect(await waitForMessages(h, bot, chatId, 2)).toEqual(['offer rx-1', 'thanks sale 50 USD deposit yes']);
    const dialog = await dialogOf(h, bot, chatId);
    expect(dialog.tags).toEqual(['buyer', 'lead']);
    expect(dialog.stepKey).toBe('thanks');
  });

  it('a bare conversion that waited on its click is handled at the claim (not by the sweeper): its step runs at /start', async () => {
    const bot = await createScriptedBot(h, {
      start: 'hello',
      steps: [
        { key: 'hello', type: 'send_message', text: 'offer {{tracker.clickid}}' },
        { key: 'thanks', type: 'send_message', text: 'thanks {{tracker.clickid}}' },
      ],
      onConversion: [{ status: 'lead', next: 'thanks', addTags: ['lead'] }],
    });
    const { click } = await clickFor(bot, 'bare-1');
    expect((await convert(bot, 'clickid=bare-1&status=lead')).status).toBe(202);
    await waitFor(async () => (await h.db('click_waiting_updates').where({ click_id: click.id }).first()) ?? null);
    const chatId = chat++;
    await sendUpdate(h, bot, fakeUpdates.start(chatId, `c_${click.token}`));
    // Accepted before the /start, the conversion is handled first: the dialog had not started, so
    // its step waits for the /start, which runs it (as a postback's step move would).
    expect(await waitForMessages(h, bot, chatId, 1, 5_000)).toEqual(['thanks bare-1']);
    expect((await dialogOf(h, bot, chatId)).tags).toEqual(['lead']);
    expect((await conversionsOf(bot, chatId))[0]).toMatchObject({ status: 'lead' });
  });

  it('a rule naming a step the script does not have is refused with the script', async () => {
    const bot = await createScriptedBot(h, SCRIPT);
    const res = await h.api('PUT', `/api/v1/bots/${bot.botId}/script`, {
      ...SCRIPT,
      onConversion: [{ next: 'nowhere' }],
    });
    expect(res.status).toBe(422);
    expect(res.body.error.problems).toEqual([{ path: 'onConversion[0].next', message: 'names no step: "nowhere"' }]);
    const wrong = await h.api('PUT', `/api/v1/bots/${bot.botId}/script`, {
      ...SCRIPT,
      onConversion: [{ status: 'won' }],
    });
    expect(wrong.status).toBe(422);
    expect(JSON.stringify(wrong.body.error.problems)).toContain('onConversion[0].status');
  });
});
