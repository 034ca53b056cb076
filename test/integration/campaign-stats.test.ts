/**
 * Campaign stats for many campaigns at once (the console's bot page): one query per kind of count,
 * each campaign's figures its own.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { campaignStats } from '../../src/db/campaigns.js';
import { campaignConversionStats } from '../../src/db/conversions.js';
import { startHarness, type Harness } from '../support/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

async function created(path: string, body: unknown): Promise<string> {
  const res = await h.api('POST', path, body);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.id as string;
}

describe('campaign stats of several campaigns', () => {
  it('counts each campaign’s clicks, starts, conversions and payouts apart, and zeros for one with none', async () => {
    const botId = await created('/api/v1/bots', {
      name: 'stats bot',
      telegramToken: '7400001:AAHfakeTokenForCampaignStatsTests_7400001',
    });
    const [a, b, quiet] = [
      await created(`/api/v1/bots/${botId}/campaigns`, { name: 'A' }),
      await created(`/api/v1/bots/${botId}/campaigns`, { name: 'B' }),
      await created(`/api/v1/bots/${botId}/campaigns`, { name: 'quiet' }),
    ];
    for (const campaign of [a, a, a, b]) {
      const res = await fetch(`${h.baseUrl}/c/${campaign}`, { redirect: 'manual' });
      expect(res.status).toBe(302);
    }
    const [claimed] = await h.db('clicks').where({ campaign_id: a }).limit(1).select('id');
    await h.db('clicks').where({ id: claimed.id }).update({ claimed_chat_id: 1 });
    const conversion = (
      campaign: string,
      tid: string,
      status: string,
      payout: string | null,
      currency: string | null,
    ) => ({
      bot_id: botId,
      clickid: `click-${tid}`,
      event: 'e',
      tid,
      status,
      payout,
      currency,
      campaign_id: campaign,
    });
    await h
      .db('conversions')
      .insert([
        conversion(a, '1', 'sale', '10.5', 'USD'),
        conversion(a, '2', 'sale', '4.5', 'USD'),
        conversion(a, '3', 'lead', null, null),
        conversion(b, '4', 'sale', '7', 'EUR'),
        conversion(b, '5', 'sale', '2', null),
      ]);

    const clicks = await campaignStats(h.db, [a, b, quiet], null, null);
    expect(Object.fromEntries(clicks)).toEqual({
      [a]: { clicks: 3, starts: 1 },
      [b]: { clicks: 1, starts: 0 },
      [quiet]: { clicks: 0, starts: 0 },
    });
    const converted = await campaignConversionStats(h.db, [a, b, quiet], null, null);
    expect(Object.fromEntries(converted)).toEqual({
      [a]: { conversions: { sale: 2, lead: 1 }, payouts: { USD: '15' } },
      [b]: { conversions: { sale: 2 }, payouts: { EUR: '7', '': '2' } },
      [quiet]: { conversions: {}, payouts: {} },
    });
    // A window before everything counts nothing, for every campaign.
    const past = new Date(Date.now() - 3_600_000);
    expect([...(await campaignStats(h.db, [a, b], null, past)).values()]).toEqual([
      { clicks: 0, starts: 0 },
      { clicks: 0, starts: 0 },
    ]);
    expect([...(await campaignConversionStats(h.db, [a, b], null, past)).values()]).toEqual([
      { conversions: {}, payouts: {} },
      { conversions: {}, payouts: {} },
    ]);
  });
});
