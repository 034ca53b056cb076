import { describe, expect, it } from 'vitest';
import {
  buildFbc,
  CLICK_ID_PARAMS,
  CLICK_ID_PATTERN,
  incomingClickId,
  isLinkPreviewCrawler,
  parseCookies,
  readClick,
  type CampaignForClick,
  type ClickRequest,
} from '../../src/domain/tracker/click-request.js';
import {
  campaignPayload,
  clickPayload,
  isValidStartPayload,
  readStartPayload,
  telegramStartLink,
} from '../../src/domain/tracker/start-payload.js';

const campaign: CampaignForClick = {
  id: 'Cmp0123456',
  name: 'Spring sale',
  params: ['utm_source', 'ad_name'],
  fields: { source: 'fb' },
};

function request(query: Array<[string, string]>, overrides: Partial<ClickRequest> = {}): ClickRequest {
  return {
    query,
    ip: '203.0.113.7',
    userAgent: 'Mozilla/5.0 (iPhone)',
    referer: 'https://m.facebook.com/',
    cookies: {},
    now: new Date('2026-03-01T12:00:00.000Z'),
    ...overrides,
  };
}

describe('start payloads', () => {
  it('builds c_<token> and k_<campaignId> payloads that fit Telegram’s rule', () => {
    expect(clickPayload('AbCdEfGh12345678')).toBe('c_AbCdEfGh12345678');
    expect(campaignPayload('Cmp0123456')).toBe('k_Cmp0123456');
    expect(isValidStartPayload('k_Cmp0123456__sub.1')).toBe(false);
    expect(isValidStartPayload('a'.repeat(64))).toBe(true);
    expect(isValidStartPayload('a'.repeat(65))).toBe(false);
  });

  it('refuses to build a payload Telegram would drop (too long, or a character outside [A-Za-z0-9_-])', () => {
    expect(() => clickPayload('x'.repeat(63))).toThrow(/Telegram/);
    expect(() => campaignPayload('has space')).toThrow(/Telegram/);
    expect(() => telegramStartLink('mybot', 'a.b')).toThrow(/Telegram/);
  });

  it('links to the bot with the payload as ?start=', () => {
    expect(telegramStartLink('my_bot', campaignPayload('Cmp0123456'))).toBe('https://t.me/my_bot?start=k_Cmp0123456');
  });

  it('reads what a /start asks for: a click token, a campaign with or without a click id, or nothing', () => {
    expect(readStartPayload('/start c_AbCdEfGh12345678')).toEqual({ kind: 'click', token: 'AbCdEfGh12345678' });
    expect(readStartPayload('/start k_Cmp0123456')).toEqual({
      kind: 'campaign',
      campaignId: 'Cmp0123456',
      clickid: null,
    });
    expect(readStartPayload('/start@my_bot k_Cmp0123456__ext-42_x')).toEqual({
      kind: 'campaign',
      campaignId: 'Cmp0123456',
      clickid: 'ext-42_x',
    });
    expect(readStartPayload('/start')).toEqual({ kind: 'none' });
    expect(readStartPayload('/start hello')).toEqual({ kind: 'none' });
    expect(readStartPayload('/start c_')).toEqual({ kind: 'none' });
    expect(readStartPayload(`/start c_${'a'.repeat(63)}`)).toEqual({ kind: 'none' });
    expect(readStartPayload('/start c_a b')).toEqual({ kind: 'none' });
    expect(readStartPayload('hello /start c_abc')).toEqual({ kind: 'none' });
  });
});

describe('incomingClickId', () => {
  it('knows the aliases API.md lists, and a click id fits a URL query unescaped', () => {
    expect(CLICK_ID_PARAMS).toEqual(['clickid', 'subid', 'click_id', 'cid']);
    for (const id of ['abc', 'A.b-c_9', 'x'.repeat(100)]) expect(CLICK_ID_PATTERN.test(id), id).toBe(true);
    for (const id of ['', 'a b', 'a&b', 'a=b', 'x'.repeat(101), 'ü']) expect(CLICK_ID_PATTERN.test(id), id).toBe(false);
  });

  it('takes clickid, subid, click_id, cid in that order of preference', () => {
    expect(
      incomingClickId([
        ['cid', 'd'],
        ['subid', 'b'],
        ['clickid', 'a'],
        ['click_id', 'c'],
      ]),
    ).toBe('a');
    expect(
      incomingClickId([
        ['cid', 'd'],
        ['click_id', 'c'],
        ['subid', 'b'],
      ]),
    ).toBe('b');
    expect(
      incomingClickId([
        ['cid', 'd'],
        ['click_id', 'c'],
      ]),
    ).toBe('c');
    expect(incomingClickId([['cid', 'd']])).toBe('d');
    expect(incomingClickId([['other', 'x']])).toBeNull();
  });

  it('skips a value outside [A-Za-z0-9_.-]{1,100} and falls back to the next parameter', () => {
    expect(
      incomingClickId([
        ['clickid', 'has space'],
        ['subid', 'ok.1'],
      ]),
    ).toBe('ok.1');
    expect(incomingClickId([['clickid', 'x'.repeat(101)]])).toBeNull();
    expect(incomingClickId([['clickid', 'x'.repeat(100)]])).toBe('x'.repeat(100));
    expect(incomingClickId([['clickid', '']])).toBeNull();
    expect(incomingClickId([['clickid', '{clickid}']])).toBeNull();
  });
});

describe('readClick', () => {
  it('keeps the campaign’s params found in the query, its fixed fields, and the campaign’s name and id', () => {
    const click = readClick(
      campaign,
      request([
        ['utm_source', 'facebook'],
        ['ad_name', 'Ad #1'],
        ['unlisted', 'dropped'],
      ]),
    );
    expect(click.fields).toEqual({
      utm_source: 'facebook',
      ad_name: 'Ad #1',
      source: 'fb',
      campaign: 'Spring sale',
      campaign_id: 'Cmp0123456',
    });
    expect(click.clickid).toBeNull();
  });

  it('takes the first value of a repeated param, leaves out empty ones and clips long ones to 1024 characters', () => {
    const click = readClick(
      campaign,
      request([
        ['utm_source', 'first'],
        ['utm_source', 'second'],
        ['ad_name', ''],
      ]),
    );
    expect(click.fields.utm_source).toBe('first');
    expect(click.fields).not.toHaveProperty('ad_name');
    const long = readClick(campaign, request([['ad_name', 'x'.repeat(2000)]]));
    expect(long.fields.ad_name).toHaveLength(1024);
  });

  it('lets a fixed field win over the same name in the query, and campaign/campaign_id win over both', () => {
    const click = readClick(
      { ...campaign, params: ['source', 'campaign'], fields: { source: 'fixed' } },
      request([
        ['source', 'query'],
        ['campaign', 'spoofed'],
      ]),
    );
    expect(click.fields.source).toBe('fixed');
    expect(click.fields.campaign).toBe('Spring sale');
  });

  it('passes the incoming click id through', () => {
    expect(readClick(campaign, request([['subid', 'net-77']])).clickid).toBe('net-77');
  });

  it('keeps what ad platforms need aside: ip, user agent, referer, fbclid with fbc built from it, ttclid, gclid', () => {
    const now = new Date('2026-03-01T12:00:00.000Z');
    const click = readClick(
      campaign,
      request(
        [
          ['fbclid', 'IwAR0Abc'],
          ['ttclid', 'tt-1'],
          ['gclid', 'g-1'],
        ],
        { cookies: { _fbp: 'fb.1.1700000000000.42' }, now },
      ),
    );
    expect(click.ad).toEqual({
      ip: '203.0.113.7',
      user_agent: 'Mozilla/5.0 (iPhone)',
      referer: 'https://m.facebook.com/',
      fbclid: 'IwAR0Abc',
      fbc: `fb.1.${now.getTime()}.IwAR0Abc`,
      fbp: 'fb.1.1700000000000.42',
      ttclid: 'tt-1',
      gclid: 'g-1',
    });
    expect(click.fields).not.toHaveProperty('ip');
  });

  it('prefers the _fbc cookie over building fbc, and leaves out what the request lacks', () => {
    const click = readClick(
      campaign,
      request([['fbclid', 'IwAR0Abc']], {
        ip: null,
        userAgent: null,
        referer: null,
        cookies: { _fbc: 'fb.1.1.cookie' },
      }),
    );
    expect(click.ad).toEqual({ fbclid: 'IwAR0Abc', fbc: 'fb.1.1.cookie' });
    expect(readClick(campaign, request([], { ip: null, userAgent: null, referer: null })).ad).toEqual({});
  });

  it('builds fbc as fb.1.<ms>.<fbclid>, keeping the fbclid’s case', () => {
    expect(buildFbc('AbC', new Date(1700000000123))).toBe('fb.1.1700000000123.AbC');
  });
});

describe('isLinkPreviewCrawler', () => {
  it('knows the link-preview fetchers of Telegram, Meta, X, Slack, WhatsApp and search crawlers', () => {
    for (const agent of [
      'TelegramBot (like TwitterBot)',
      'facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)',
      'meta-externalagent/1.1',
      'Twitterbot/1.0',
      'Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)',
      'WhatsApp/2.23.20.0',
      'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)',
      'Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)',
    ]) {
      expect(isLinkPreviewCrawler(agent), agent).toBe(true);
    }
  });

  it('lets browsers (in-app ones included) through, and an absent user agent', () => {
    for (const agent of [
      'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 [FBAN/FBIOS;FBAV/440.0]',
      'Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/124.0 Mobile Safari/537.36',
      'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36',
    ]) {
      expect(isLinkPreviewCrawler(agent), agent).toBe(false);
    }
    expect(isLinkPreviewCrawler(null)).toBe(false);
    expect(isLinkPreviewCrawler(undefined)).toBe(false);
    expect(isLinkPreviewCrawler('')).toBe(false);
  });
});

describe('parseCookies', () => {
  it('reads name=value pairs, decoding values and keeping the first of a repeated name', () => {
    expect(parseCookies('_fbp=fb.1.2.3; _fbc=fb.1.9.Ab%2BC; _fbp=second')).toEqual({
      _fbp: 'fb.1.2.3',
      _fbc: 'fb.1.9.Ab+C',
    });
  });

  it('keeps a value that is not valid percent-encoding as sent, and skips pairs without a name', () => {
    expect(parseCookies('a=%E0%A4%A; =x; novalue; b=2')).toEqual({ a: '%E0%A4%A', b: '2' });
    expect(parseCookies(undefined)).toEqual({});
    expect(parseCookies('')).toEqual({});
  });
});
