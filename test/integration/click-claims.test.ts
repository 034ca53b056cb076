import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertCampaign } from '../../src/db/campaigns.js';
import { insertClick } from '../../src/db/clicks.js';
import { readClick } from '../../src/domain/tracker/click-request.js';
import {
  createScriptedBot,
  dialogOf,
  messagesTo,
  sendUpdate,
  waitForMessages,
  type TestBot,
} from '../support/bot-scripts.js';
import { fakeUpdates } from '../support/fake-telegram.js';
import { startHarness, waitFor, type Harness } from '../support/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ workers: true, env: { TELEGRAM_CHAT_RATE_LIMIT: '0' } });
});
afterAll(async () => {
  await h?.close();
});

let chat = 610_000;
const nextChat = () => chat++;

const SCRIPT = {
  start: 'welcome',
  steps: [
    { key: 'welcome', type: 'send_message', text: 'hi {{tracker.clickid}} {{tracker.ad_name}} {{fields.deposit}}' },
    { key: 'offer', type: 'send_message', text: 'offer {{tracker.clickid}}' },
  ],
};

async function campaignWithClick(
  bot: TestBot,
  clickid: string | null,
  adName = 'test',
  startStep: string | null = null,
) {
  const campaign = await insertCampaign(h.db, {
    botId: bot.botId,
    name: 'spring',
    params: ['ad_name'],
    fields: { source: 'fb' },
    startStep,
  });
  const read = readClick(campaign, {
    query: [['ad_name', adName]],
    ip: '203.0.113.9',
    userAgent: 'Mozilla/5.0',
    referer: null,
    cookies: {},
    now: new Date(),
  });
  const click = await insertClick(h.db, {
    botId: bot.botId,
    campaignId: campaign.id,
    clickid,
    fields: read.fields,
    ad: {},
  });
  return { campaign, click };
}

function postback(bot: TestBot, query: string) {
  return fetch(`${bot.postbackUrl}?${query}`);
}

async function clickRow(clickid: string, bot: TestBot) {
  return h.db('clicks').where({ bot_id: bot.botId, clickid }).first();
}

describe('claiming clicks with /start', () => {
  it('a campaign link’s /start gives the dialog the click’s tracker fields, and postbacks by clickid reach it', async () => {
    const bot = await createScriptedBot(h, SCRIPT);
    const { campaign, click } = await campaignWithClick(bot, 'ext-1');
    const chatId = nextChat();

    // Before anyone claims it: an unknown click id is a final 404; a known one is accepted and waits.
    const unknown = await postback(bot, 'clickid=nope-1&deposit=1');
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: { code: string; param: string } }).error).toMatchObject({
      code: 'unknown_clickid',
      param: 'clickid',
    });
    expect((await postback(bot, 'subid=ext-1&deposit=5')).status).toBe(202);
    await waitFor(async () => (await h.db('click_waiting_updates').where({ click_id: click.id }).first()) ?? null);

    expect((await sendUpdate(h, bot, fakeUpdates.start(chatId, `c_${click.token}`))).status).toBe(200);
    expect(await waitForMessages(h, bot, chatId, 1)).toEqual(['hi ext-1 test 5']);

    const dialog = await dialogOf(h, bot, chatId);
    expect(dialog.tracker).toMatchObject({
      clickid: 'ext-1',
      ad_name: 'test',
      source: 'fb',
      campaign: 'spring',
      campaign_id: campaign.id,
    });
    expect(dialog.fields.deposit).toBe('5');
    const row = await h.db('dialogs').where({ bot_id: bot.botId, chat_id: chatId }).first();
    expect(row.first_click_id).toBe(click.id);
    expect(row.latest_click_id).toBe(click.id);
    expect(await h.db('click_waiting_updates').where({ click_id: click.id })).toEqual([]);

    // Once claimed, a postback by clickid is the dialog's at once.
    expect((await postback(bot, 'clickid=ext-1&stepId=offer')).status).toBe(202);
    expect(await waitForMessages(h, bot, chatId, 2)).toEqual(['hi ext-1 test 5', 'offer ext-1']);
  });

  it('a forwarded link forks: the second chat gets a click of its own, with a new clickid and the same fields', async () => {
    const bot = await createScriptedBot(h, SCRIPT);
    const { click } = await campaignWithClick(bot, 'ext-fwd', 'forwarded');
    const first = nextChat();
    const second = nextChat();
    await sendUpdate(h, bot, fakeUpdates.start(first, `c_${click.token}`));
    expect(await waitForMessages(h, bot, first, 1)).toEqual(['hi ext-fwd forwarded ']);
    await sendUpdate(h, bot, fakeUpdates.start(second, `c_${click.token}`));
    const [text] = await waitForMessages(h, bot, second, 1);
    const forked = /^hi (\S+) forwarded $/.exec(text!)?.[1];
    expect(forked).toBeDefined();
    expect(forked).not.toBe('ext-fwd');
    expect((await clickRow(forked!, bot)).parent_id).toBe(click.id);
    expect(Number((await clickRow('ext-fwd', bot)).claimed_chat_id)).toBe(first);

    // Each click id still leads to its own dialog.
    await postback(bot, `clickid=${forked}&deposit=2`);
    await postback(bot, 'clickid=ext-fwd&deposit=1');
    await waitFor(async () => (await dialogOf(h, bot, second))?.fields.deposit === '2');
    await waitFor(async () => (await dialogOf(h, bot, first))?.fields.deposit === '1');
  });

  it('a returning user with a new click keeps the first, takes the new one as latest, and both click ids resolve to it', async () => {
    const bot = await createScriptedBot(h, SCRIPT);
    const one = await campaignWithClick(bot, 'ret-1', 'first');
    const two = await campaignWithClick(bot, 'ret-2', 'second');
    const chatId = nextChat();
    await sendUpdate(h, bot, fakeUpdates.start(chatId, `c_${one.click.token}`));
    await waitForMessages(h, bot, chatId, 1);
    await sendUpdate(h, bot, fakeUpdates.start(chatId, `c_${two.click.token}`));
    expect(await waitForMessages(h, bot, chatId, 2)).toEqual(['hi ret-1 first ', 'hi ret-2 second ']);
    const row = await h.db('dialogs').where({ bot_id: bot.botId, chat_id: chatId }).first();
    expect(row.first_click_id).toBe(one.click.id);
    expect(row.latest_click_id).toBe(two.click.id);
    await postback(bot, 'clickid=ret-1&deposit=7');
    await waitFor(async () => (await dialogOf(h, bot, chatId))?.fields.deposit === '7');
    expect((await dialogOf(h, bot, chatId)).tracker.clickid).toBe('ret-2');
  });

  it('a static campaign link makes its click at /start, with the link’s click id, and begins at the campaign’s start step', async () => {
    const bot = await createScriptedBot(h, SCRIPT);
    const { campaign } = await campaignWithClick(bot, null, 'unused', 'offer');
    const chatId = nextChat();
    await sendUpdate(h, bot, fakeUpdates.start(chatId, `k_${campaign.id}__ads-77`));
    expect(await waitForMessages(h, bot, chatId, 1)).toEqual(['offer ads-77']);
    const click = await clickRow('ads-77', bot);
    expect(Number(click.claimed_chat_id)).toBe(chatId);
    expect(click.fields).toEqual({ source: 'fb', campaign: 'spring', campaign_id: campaign.id, clickid: 'ads-77' });

    const other = nextChat();
    await sendUpdate(h, bot, fakeUpdates.start(other, `k_${campaign.id}`));
    const [text] = await waitForMessages(h, bot, other, 1);
    expect(text).toMatch(/^offer [A-Za-z0-9]{16}$/);
  });

  it('a /start with no payload, an unknown token or a foreign payload starts with no tracker data', async () => {
    const bot = await createScriptedBot(h, SCRIPT);
    for (const payload of [undefined, 'c_unknownToken0001', 'hello-world']) {
      const chatId = nextChat();
      await sendUpdate(h, bot, fakeUpdates.start(chatId, payload));
      expect(await waitForMessages(h, bot, chatId, 1)).toEqual(['hi   ']);
      expect((await dialogOf(h, bot, chatId)).tracker).toEqual({});
    }
    expect(messagesTo(h, bot, 0)).toEqual([]);
  });
});
