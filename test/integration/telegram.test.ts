import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import type { Update } from 'grammy/types';
import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, type Logger } from '../../src/config/log.js';
import {
  BotRegistry,
  classifyUpdate,
  getMe,
  parseBotInfo,
  registerWebhook,
  SendLimiter,
  splitMessage,
  startPollers,
  TelegramApiError,
  TelegramSender,
  TelegramSendError,
  usesWebhook,
  webhookUrl,
  type BotCredentials,
  type PolledBot,
  type Pollers,
  type TelegramEvent,
} from '../../src/telegram/index.js';
import { fakeUpdates, startFakeTelegram, TELEGRAM_ERRORS, type FakeTelegram } from '../support/fake-telegram.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const silent = createLogger('silent');

let botSeq = 700_000 + Math.floor(Math.random() * 100_000);
/** A token shaped like BotFather's, unique per call. */
function newToken(): string {
  botSeq++;
  return `${botSeq}:AA${randomBytes(24).toString('base64url')}`;
}

function uniquePrefix(): string {
  return `fptg_${randomBytes(5).toString('hex')}`;
}

async function dropPrefix(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    if (keys.length) await redis.del(...keys);
    cursor = next;
  } while (cursor !== '0');
}

async function until(check: () => boolean, timeoutMs = 5_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A logger whose lines are kept, to check that no token is ever written. */
function capturingLogger(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(chunk.toString());
      callback();
    },
  });
  return { log: pino({ level: 'trace' }, stream), lines };
}

// ---------------------------------------------------------------------------------------------

describe('classifyUpdate', () => {
  const from = { id: 5, is_bot: false, first_name: 'Ann', last_name: 'Lee', username: 'ann' };
  const user = { username: 'ann', firstName: 'Ann', lastName: 'Lee' };
  const message = (text: string, extra: Record<string, unknown> = {}) => ({
    update_id: 10,
    message: { message_id: 1, date: 1, chat: { id: 5, type: 'private' }, from, text, ...extra },
  });

  it('reads /start with and without a deep-link payload', () => {
    expect(classifyUpdate(message('/start'))).toEqual({ kind: 'start', chatId: 5, updateId: 10, payload: null, user });
    expect(classifyUpdate(message('/start abc_DEF-123'))).toEqual({
      kind: 'start',
      chatId: 5,
      updateId: 10,
      payload: 'abc_DEF-123',
      user,
    });
    expect(classifyUpdate(message('/start@bot42 c1'))).toMatchObject({ kind: 'start', payload: 'c1' });
    expect(classifyUpdate(message('/start@Bot42 c1'), { botUsername: 'bot42' })).toMatchObject({
      kind: 'start',
      payload: 'c1',
    });
    expect(classifyUpdate(message('  /start\tx  '))).toMatchObject({ kind: 'start', payload: 'x' });
    expect(classifyUpdate(message('/start ' + 'a'.repeat(64)))).toMatchObject({
      kind: 'start',
      payload: 'a'.repeat(64),
    });
  });

  it('treats a payload that is too long or has other characters as no payload', () => {
    expect(classifyUpdate(message('/start ' + 'a'.repeat(65)))).toMatchObject({ kind: 'start', payload: null });
    expect(classifyUpdate(message('/start a b'))).toMatchObject({ kind: 'start', payload: null });
    expect(classifyUpdate(message('/start a=b'))).toMatchObject({ kind: 'start', payload: null });
    expect(classifyUpdate(message('/start привет'))).toMatchObject({ kind: 'start', payload: null });
  });

  it('reads other texts as text, including look-alikes of /start', () => {
    expect(classifyUpdate(message('hello'))).toEqual({ kind: 'text', chatId: 5, updateId: 10, text: 'hello', user });
    expect(classifyUpdate(message('/startabc'))).toMatchObject({ kind: 'text', text: '/startabc' });
    expect(classifyUpdate(message('/help'))).toMatchObject({ kind: 'text' });
    expect(classifyUpdate(message('please /start'))).toMatchObject({ kind: 'text' });
    // Addressed to another bot in a group.
    expect(classifyUpdate(message('/start@otherbot x'), { botUsername: 'bot42' })).toMatchObject({ kind: 'text' });
  });

  it('reads a button press', () => {
    const update = {
      update_id: 11,
      callback_query: {
        id: '987',
        from,
        chat_instance: '1',
        data: 'step:offer',
        message: { message_id: 3, date: 1, chat: { id: 5, type: 'private' } },
      },
    };
    expect(classifyUpdate(update)).toEqual({
      kind: 'button',
      chatId: 5,
      updateId: 11,
      callbackQueryId: '987',
      data: 'step:offer',
      user,
    });
    // An inline-mode message has no `message`: the user's chat.
    const { message: _omit, ...inline } = update.callback_query;
    expect(classifyUpdate({ update_id: 12, callback_query: { ...inline, inline_message_id: 'x' } })).toMatchObject({
      kind: 'button',
      chatId: 5,
    });
    // No data (a game button): nothing to act on.
    expect(classifyUpdate({ update_id: 13, callback_query: { id: '1', from, chat_instance: '1' } })).toBeNull();
    expect(classifyUpdate({ update_id: 13, callback_query: { id: 1, from, data: 'x' } })).toBeNull();
  });

  it('reads blocking and unblocking from my_chat_member', () => {
    const member = (status: string) => ({
      update_id: 20,
      my_chat_member: {
        chat: { id: 5, type: 'private' },
        from,
        date: 1,
        old_chat_member: { status: 'member' },
        new_chat_member: { status },
      },
    });
    expect(classifyUpdate(member('kicked'))).toEqual({ kind: 'blocked', chatId: 5, updateId: 20 });
    expect(classifyUpdate(member('member'))).toEqual({ kind: 'unblocked', chatId: 5, updateId: 20 });
    expect(classifyUpdate(member('left'))).toMatchObject({ kind: 'blocked' });
    expect(classifyUpdate(member('weird'))).toBeNull();
    expect(classifyUpdate({ update_id: 20, my_chat_member: { chat: { id: 5 } } })).toBeNull();
    expect(classifyUpdate({ update_id: 20, ...fakeUpdates.blocked(77) })).toMatchObject({
      kind: 'blocked',
      chatId: 77,
    });
    expect(classifyUpdate({ update_id: 21, ...fakeUpdates.unblocked(77) })).toMatchObject({
      kind: 'unblocked',
      chatId: 77,
    });
  });

  it('reads any other message as other', () => {
    expect(classifyUpdate({ update_id: 30, ...fakeUpdates.photo(5) })).toEqual({
      kind: 'other',
      chatId: 5,
      updateId: 30,
    });
    expect(classifyUpdate({ update_id: 31, message: { chat: { id: -1001234567890 }, sticker: {} } })).toEqual({
      kind: 'other',
      chatId: -1001234567890,
      updateId: 31,
    });
  });

  it('falls back to the chat names, and to nulls, for the user', () => {
    const noFrom = {
      update_id: 1,
      message: { chat: { id: 9, type: 'private', username: 'u9', first_name: 'Nine' }, text: 'hi' },
    };
    expect(classifyUpdate(noFrom)).toMatchObject({ user: { username: 'u9', firstName: 'Nine', lastName: null } });
    const group = { update_id: 1, message: { chat: { id: -9, type: 'group', title: 'G' }, text: 'hi' } };
    expect(classifyUpdate(group)).toMatchObject({ user: { username: null, firstName: null, lastName: null } });
    const oddFrom = {
      update_id: 1,
      message: { chat: { id: 9 }, from: { username: 5, first_name: ['x'] }, text: 'hi' },
    };
    expect(classifyUpdate(oddFrom)).toMatchObject({ user: { username: null, firstName: null, lastName: null } });
  });

  it('returns null for garbage and never throws', () => {
    const hostile = new Proxy(
      {},
      {
        get() {
          throw new Error('boom');
        },
      },
    );
    const garbage: unknown[] = [
      null,
      undefined,
      'update',
      42,
      true,
      [],
      [{ update_id: 1 }],
      {},
      { update_id: '1', message: { chat: { id: 1 }, text: 'x' } },
      { update_id: 1.5, message: { chat: { id: 1 }, text: 'x' } },
      { update_id: 1 },
      { update_id: 1, message: null },
      { update_id: 1, message: 'hi' },
      { update_id: 1, message: {} },
      { update_id: 1, message: { text: 'hi' } },
      { update_id: 1, message: { chat: null, text: 'hi' } },
      { update_id: 1, message: { chat: { id: '5' }, text: 'hi' } },
      { update_id: 1, message: { chat: { id: 2 ** 60 }, text: 'hi' } },
      { update_id: 1, edited_message: { chat: { id: 1 }, text: 'x' } },
      { update_id: 1, channel_post: { chat: { id: -1 }, text: 'x' } },
      { update_id: 1, inline_query: { id: '1' } },
      hostile,
      { update_id: 1, message: hostile },
    ];
    for (const value of garbage) expect(classifyUpdate(value)).toBeNull();
  });

  it('reads what the fake server builds', () => {
    const events: Array<TelegramEvent | null> = [
      classifyUpdate({ update_id: 1, ...fakeUpdates.start(8, 'clk_1') }),
      classifyUpdate({ update_id: 2, ...fakeUpdates.text(8, 'hi') }),
      classifyUpdate({ update_id: 3, ...fakeUpdates.button(8, 'b1') }),
    ];
    expect(events.map((e) => e?.kind)).toEqual(['start', 'text', 'button']);
    expect(events[0]).toMatchObject({
      payload: 'clk_1',
      user: { username: 'user8', firstName: 'Test', lastName: 'User' },
    });
  });
});

// ---------------------------------------------------------------------------------------------

/** Every tag in a part is closed in it, in order. */
function balanced(html: string): boolean {
  const stack: string[] = [];
  for (const match of html.matchAll(/<(\/?)([a-z][a-z0-9-]*)[^>]*>/gi)) {
    const name = match[2]!.toLowerCase();
    if (match[1] === '/') {
      if (stack.pop() !== name) return false;
    } else stack.push(name);
  }
  return stack.length === 0;
}

const stripTags = (html: string) => html.replace(/<[^>]*>/g, '');
const words = (text: string) => text.split(/\s+/).filter(Boolean);

describe('splitMessage', () => {
  it('leaves a text that fits alone, up to exactly 4096', () => {
    expect(splitMessage('hello <b>world</b>')).toEqual(['hello <b>world</b>']);
    const exact = 'x'.repeat(4096);
    expect(splitMessage(exact)).toEqual([exact]);
    expect(splitMessage('')).toEqual(['']);
  });

  it('splits 4097 characters into two parts', () => {
    const parts = splitMessage('x'.repeat(4097));
    expect(parts.map((p) => p.length)).toEqual([4096, 1]);
  });

  it('prefers paragraph, then line, then space boundaries', () => {
    const a = 'a'.repeat(3000);
    const b = 'b'.repeat(3000);
    expect(splitMessage(`${a}\n\n${b}`)).toEqual([a, b]);
    expect(splitMessage(`${a}\n${b}`)).toEqual([a, b]);
    expect(splitMessage(`${a} ${b}`)).toEqual([a, b]);
    // A paragraph break too early in the part loses to a later line break.
    const text = `intro\n\n${'c'.repeat(3000)}\n${'d'.repeat(3000)}`;
    expect(splitMessage(text)).toEqual([`intro\n\n${'c'.repeat(3000)}`, 'd'.repeat(3000)]);
    // A later paragraph break wins over later spaces.
    const prose = `${'word '.repeat(500)}end.\n\n${'more '.repeat(500)}`;
    const parts = splitMessage(prose, 4096);
    expect(parts[0]!.endsWith('end.')).toBe(true);
  });

  it('keeps every word, in order, in parts of at most 4096', () => {
    const text = Array.from(
      { length: 3000 },
      (_, i) => `w${i}${i % 40 === 39 ? '\n\n' : i % 9 === 8 ? '\n' : ' '}`,
    ).join('');
    const parts = splitMessage(text);
    expect(parts.length).toBeGreaterThan(1);
    for (const part of parts) expect(part.length).toBeLessThanOrEqual(4096);
    expect(words(parts.join(' '))).toEqual(words(text));
  });

  it('cuts a text without spaces anywhere but keeps it whole', () => {
    const text = 'z'.repeat(10_000);
    const parts = splitMessage(text);
    expect(parts.map((p) => p.length)).toEqual([4096, 4096, 1808]);
    expect(parts.join('')).toBe(text);
  });

  it('closes and re-opens tags across parts, attributes included', () => {
    const link = '<a href="https://partner.example/signup?a=1&amp;b=2">';
    const text = `<b>${'bold '.repeat(1000)}</b> and ${link}${'link '.repeat(1000)}</a> <i>end</i>`;
    const parts = splitMessage(text);
    expect(parts.length).toBeGreaterThan(2);
    for (const part of parts) {
      expect(part.length).toBeLessThanOrEqual(4096);
      expect(balanced(part)).toBe(true);
    }
    expect(parts[0]!.startsWith('<b>')).toBe(true);
    expect(parts[0]!.endsWith('</b>')).toBe(true);
    expect(parts[1]!.startsWith('<b>')).toBe(true);
    const linkParts = parts.filter((p) => p.includes('link'));
    expect(linkParts.length).toBeGreaterThan(1);
    for (const part of linkParts) expect(part).toContain(link);
    expect(words(stripTags(parts.join(' ')))).toEqual(words(stripTags(text)));
  });

  it('never cuts inside a tag, an entity or a surrogate pair', () => {
    const limit = 50;
    const text = `${'&amp;'.repeat(30)} ${'<b>x</b>'.repeat(30)} ${'😀'.repeat(60)} <a href="https://example.com/a-long-path">y</a>`;
    for (let shift = 0; shift < 12; shift++) {
      const parts = splitMessage('.'.repeat(shift) + text, limit);
      for (const part of parts) {
        expect(part.length).toBeLessThanOrEqual(limit);
        expect(balanced(part)).toBe(true);
        expect(part).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/);
        // Every & starts a whole entity; every < starts a whole tag.
        expect(part.replace(/&(amp|lt|gt|quot);/g, '')).not.toContain('&');
        expect(part.replace(/<\/?[a-z]+(\s[^>]*)?>/g, '')).not.toMatch(/[<>]/);
      }
      expect(stripTags(parts.join('')).replace(/\s/g, '')).toBe(stripTags('.'.repeat(shift) + text).replace(/\s/g, ''));
    }
  });

  it('keeps indentation inside <pre> and closes nested tags in order', () => {
    const code = Array.from({ length: 400 }, (_, i) => `    line ${i} = value;`).join('\n');
    const text = `<pre><code class="language-js">${code}</code></pre>`;
    const parts = splitMessage(text);
    expect(parts.length).toBeGreaterThan(1);
    for (const part of parts) {
      expect(part.startsWith('<pre><code class="language-js">')).toBe(true);
      expect(part.endsWith('</code></pre>')).toBe(true);
      expect(part).toContain('    line');
    }
    const lines = parts.flatMap((p) => stripTags(p).split('\n'));
    expect(lines).toEqual(code.split('\n'));
  });

  it('closes a tag the source left open', () => {
    const parts = splitMessage(`<b>${'a '.repeat(3000)}`);
    for (const part of parts) expect(balanced(part)).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------

describe('with Redis', () => {
  let redis: Redis;
  let other: Redis;
  const prefixes: string[] = [];
  const prefix = () => {
    const p = uniquePrefix();
    prefixes.push(p);
    return p;
  };

  beforeAll(() => {
    redis = new Redis(REDIS_URL);
    other = new Redis(REDIS_URL);
  });

  afterAll(async () => {
    for (const p of prefixes) await dropPrefix(redis, p);
    redis.disconnect();
    other.disconnect();
  });

  describe('SendLimiter', () => {
    // The limiter books slots on Redis' clock, this machine's: a slot is `wait` after a moment
    // between `from` and `to`. Tests compare slots, so a slow round trip under load does not
    // count as time the limiter handed out.
    interface Booked {
      wait: number;
      from: number;
      to: number;
    }
    const book = async (limiter: SendLimiter, bot: string, chat: number): Promise<Booked> => {
      const from = Date.now();
      const wait = await limiter.reserve(bot, chat);
      return { wait, from, to: Date.now() };
    };
    /** The slot of `later` is more than `min` and at most `max` ms after the slot of `first` (1 ms of rounding). */
    const expectGap = (first: Booked, later: Booked, min: number, max: number) => {
      expect(later.to + later.wait - first.from, 'gap at its longest').toBeGreaterThan(min);
      expect(later.from + later.wait - first.to, 'gap at its shortest').toBeLessThanOrEqual(max + 1);
    };

    it('allows 1 message a second per chat; another chat need not wait', async () => {
      const limiter = new SendLimiter(redis, { prefix: prefix() });
      const first = await book(limiter, 'b1', 100);
      expect(first.wait).toBe(0);
      expectGap(first, await book(limiter, 'b1', 100), 900, 1000);
      expectGap(first, await book(limiter, 'b1', 100), 1900, 2000);
      // Another chat: only the bot's 30/s spacing.
      expect(await limiter.reserve('b1', 200)).toBeLessThan(100);
      // Another bot, same chat id: its own limits.
      expect(await limiter.reserve('b2', 100)).toBe(0);
    });

    it('is shared by two limiters on two connections (two processes)', async () => {
      const p = prefix();
      const a = new SendLimiter(redis, { prefix: p });
      const b = new SendLimiter(other, { prefix: p });
      const first = await book(a, 'bot', 5);
      expect(first.wait).toBe(0);
      expectGap(first, await book(b, 'bot', 5), 900, 1000);
      expectGap(first, await book(a, 'bot', 5), 1900, 2000);
    });

    it('spaces a bot across chats at its rate', async () => {
      const limiter = new SendLimiter(redis, { prefix: prefix(), limits: { botPerSecond: 10 } });
      const booked: Booked[] = [];
      for (let chat = 1; chat <= 20; chat++) booked.push(await book(limiter, 'bot', chat));
      const first = booked[0]!;
      expect(first.wait).toBe(0);
      // Each slot is no earlier than the one before.
      for (let i = 1; i < booked.length; i++)
        expect(booked[i]!.to + booked[i]!.wait).toBeGreaterThanOrEqual(booked[i - 1]!.from + booked[i - 1]!.wait);
      // Reservation i goes in the i-th 100 ms slot.
      expectGap(first, booked[19]!, 1750, 1950);
      // At most 11 slots within the first second (counting those surely in it, whatever the round trips took).
      expect(booked.filter((b) => b.to + b.wait - first.from < 1000).length).toBeLessThanOrEqual(11);
    });

    it('does not let a chat that must wait hold up the bot’s other chats', async () => {
      const limiter = new SendLimiter(redis, { prefix: prefix() });
      for (let i = 0; i < 4; i++) await limiter.reserve('bot', 1);
      const waits: number[] = [];
      for (let chat = 2; chat <= 6; chat++) waits.push(await limiter.reserve('bot', chat));
      expect(Math.max(...waits)).toBeLessThan(300);
    });

    it('allows 20 a minute in a group', async () => {
      const limiter = new SendLimiter(redis, { prefix: prefix() });
      const first = await book(limiter, 'bot', -1001234567890);
      expect(first.wait).toBe(0);
      expectGap(first, await book(limiter, 'bot', -1001234567890), 2900, 3000);
    });

    it('the spare lane (broadcasts) takes only a slot free now, so live sends go first', async () => {
      const limiter = new SendLimiter(redis, { prefix: prefix(), limits: { botPerSecond: 10 } });
      // Free: the spare lane books the slot of this moment.
      expect(await limiter.reserveSpare('bot', 1)).toEqual({ booked: true, waitMs: 0, chatBusy: false });
      // Live sends book ahead: five 100 ms buckets, the first after the spare one.
      const live: Booked[] = [];
      for (let chat = 10; chat < 15; chat++) live.push(await book(limiter, 'bot', chat));
      expect(live[0]!.wait).toBeLessThanOrEqual(101);
      // While they are booked, the spare lane gets nothing; it is told to ask again later.
      const later = await limiter.reserveSpare('bot', 2);
      expect(later.booked).toBe(false);
      expect(later.chatBusy).toBe(false);
      expect(later.waitMs).toBeGreaterThan(0);
      expect(later.waitMs).toBeLessThanOrEqual(600);
      // A live send asked for after a spare one waits at most one bucket for it.
      await new Promise((resolve) => setTimeout(resolve, 700));
      let spare = await limiter.reserveSpare('bot', 3);
      for (let i = 0; !spare.booked && i < 5; i++) {
        await new Promise((resolve) => setTimeout(resolve, spare.waitMs));
        spare = await limiter.reserveSpare('bot', 3);
      }
      expect(spare.booked).toBe(true);
      expect(await limiter.reserve('bot', 20)).toBeLessThanOrEqual(101);
      // A chat that got a message less than a second ago is not free for the spare lane.
      const chatBusy = await limiter.reserveSpare('bot', 10);
      expect(chatBusy.booked).toBe(false);
      expect(chatBusy.chatBusy).toBe(true);
    });

    it('holds the whole bot, both lanes, for a 429’s retry_after', async () => {
      const limiter = new SendLimiter(redis, { prefix: prefix() });
      const p = prefix();
      const held = new SendLimiter(redis, { prefix: p });
      await held.hold('bot', 800);
      const first = await book(held, 'bot', 1);
      expect(first.wait + (first.to - first.from)).toBeGreaterThan(700);
      expect(first.wait).toBeLessThanOrEqual(800);
      expect(await held.reserveSpare('bot', 2)).toMatchObject({ booked: false, chatBusy: false });
      // A shorter hold does not shorten it; another bot is not held.
      await held.hold('bot', 10);
      expect(await held.reserve('bot', 3)).toBeGreaterThan(500);
      expect(await held.reserve('other', 3)).toBe(0);
      expect(await limiter.reserve('bot', 1)).toBe(0);
    });

    it('can lift the per-bot limit (benchmarks) and take bursts', async () => {
      const unlimited = new SendLimiter(redis, { prefix: prefix(), limits: { botPerSecond: 0 } });
      const waits = await Promise.all(Array.from({ length: 200 }, (_, i) => unlimited.reserve('bot', i + 1)));
      expect(waits.every((w) => w === 0)).toBe(true);
      const bursty = new SendLimiter(redis, { prefix: prefix(), limits: { chatBurst: 3 } });
      const chatWaits = [];
      const started = Date.now();
      let fourthAt = started;
      for (let i = 0; i < 4; i++) {
        if (i === 3) fourthAt = Date.now();
        chatWaits.push(await bursty.reserve('bot', 9));
      }
      expect(chatWaits.slice(0, 3).every((w) => w < 100)).toBe(true);
      // The fourth goes a second after the first, however long the three reservations took.
      expect(chatWaits[3]! + (fourthAt - started)).toBeGreaterThan(900);
    });
  });

  // -------------------------------------------------------------------------------------------

  describe('long poller', () => {
    let fake: FakeTelegram;
    const running: Pollers[] = [];

    beforeAll(async () => {
      fake = await startFakeTelegram();
    });
    afterEach(async () => {
      await Promise.all(running.splice(0).map((p) => p.stop()));
    });
    afterAll(async () => {
      await fake.close();
    });

    async function botFor(token: string): Promise<PolledBot> {
      return { botId: `bot-${token.split(':')[0]}`, token, botInfo: await getMe(token, fake.apiRoot) };
    }

    function start(
      label: string,
      p: string,
      bots: () => PolledBot[],
      received: Array<{ label: string; update: Update }>,
      extra: {
        onUpdate?: (update: Update) => Promise<void>;
        log?: Logger;
        conn?: Redis;
        pollTimeoutSeconds?: number;
        maxBots?: number;
      } = {},
    ): Pollers {
      const pollers = startPollers({
        redis: extra.conn ?? redis,
        prefix: p,
        listBots: async () => bots(),
        apiRoot: fake.clientRoot(label),
        onUpdate: async (_botId, update) => {
          await extra.onUpdate?.(update);
          received.push({ label, update });
        },
        log: extra.log ?? silent,
        pollTimeoutSeconds: extra.pollTimeoutSeconds ?? 1,
        rescanIntervalMs: 200,
        lockTtlMs: 3_000,
        retryDelayMs: 50,
        ...(extra.maxBots !== undefined ? { maxBots: extra.maxBots } : {}),
      });
      running.push(pollers);
      return pollers;
    }

    it('polls each bot from one process only, in order, and hands over when the holder stops', async () => {
      const token = newToken();
      const bot = await botFor(token);
      const p = prefix();
      const received: Array<{ label: string; update: Update }> = [];
      const a = start('procA', p, () => [bot], received);
      const b = start('procB', p, () => [bot], received, { conn: other });

      await fake.waitForCall('getUpdates', (c) => c.token === token);
      await new Promise((resolve) => setTimeout(resolve, 600)); // a few rescans
      const holders = [a, b].filter((x) => x.held().includes(bot.botId));
      expect(holders).toHaveLength(1);
      const holder = holders[0]!;
      const standby = holder === a ? b : a;
      const holderLabel = holder === a ? 'procA' : 'procB';
      const standbyLabel = holder === a ? 'procB' : 'procA';

      const pushed = [1, 2, 3, 4, 5].map((n) => fake.pushUpdate(token, fakeUpdates.text(42, `m${n}`)).update_id);
      await until(() => received.length === 5, 5_000, 'five updates');
      expect(received.map((r) => r.update.update_id)).toEqual(pushed);
      expect(new Set(received.map((r) => r.label))).toEqual(new Set([holderLabel]));
      expect(new Set(fake.callsOf('getUpdates', token).map((c) => c.client))).toEqual(new Set([holderLabel]));
      expect(fake.callsOf('getUpdates', token).some((c) => c.status === 409)).toBe(false);
      // The next poll confirms them.
      await fake.waitForCall('getUpdates', (c) => c.token === token && c.params.offset === pushed[4]! + 1);

      const stoppedAt = Date.now();
      await holder.stop();
      expect(Date.now() - stoppedAt).toBeLessThan(1_500);
      await fake.waitForCall('getUpdates', (c) => c.token === token && c.client === standbyLabel, 5_000);
      expect(standby.held()).toEqual([bot.botId]);

      const later = [6, 7].map((n) => fake.pushUpdate(token, fakeUpdates.text(42, `m${n}`)).update_id);
      await until(() => received.length === 7, 5_000, 'two more updates');
      // Nothing handled twice: the offset went over with the lock.
      expect(received.map((r) => r.update.update_id)).toEqual([...pushed, ...later]);
      expect(received.slice(5).every((r) => r.label === standbyLabel)).toBe(true);
      const firstStandbyPoll = fake.callsOf('getUpdates', token).find((c) => c.client === standbyLabel)!;
      expect(firstStandbyPoll.params.offset).toBe(pushed[4]! + 1);
    });

    it('retries a failing handler without skipping or reordering', async () => {
      const token = newToken();
      const bot = await botFor(token);
      const received: Array<{ label: string; update: Update }> = [];
      let failOnce = true;
      start('solo', prefix(), () => [bot], received, {
        onUpdate: async (update) => {
          if (update.message?.text === 'second' && failOnce) {
            failOnce = false;
            throw new Error('queue down');
          }
        },
      });
      await fake.waitForCall('getUpdates', (c) => c.token === token);
      const ids = ['first', 'second', 'third'].map(
        (text) => fake.pushUpdate(token, fakeUpdates.text(7, text)).update_id,
      );
      await until(() => received.length === 3, 5_000, 'three updates');
      expect(received.map((r) => r.update.update_id)).toEqual(ids);
      expect(failOnce).toBe(false);
    });

    it('shares bots out between processes with a cap', async () => {
      const bots = [await botFor(newToken()), await botFor(newToken())];
      const p = prefix();
      const a = start('capA', p, () => bots, [], { maxBots: 1 });
      const b = start('capB', p, () => bots, [], { maxBots: 1, conn: other });
      await until(() => a.held().length === 1 && b.held().length === 1, 5_000, 'one bot each');
      expect(new Set([...a.held(), ...b.held()])).toEqual(new Set(bots.map((x) => x.botId)));
    });

    it('stop() aborts a long poll in flight', async () => {
      const token = newToken();
      const bot = await botFor(token);
      const p = prefix();
      const pollers = start('abort', p, () => [bot], [], { pollTimeoutSeconds: 20 });
      const held = await fake.waitForCall('getUpdates', (c) => c.token === token);
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(held.status).toBe(0); // still held by the fake
      const started = Date.now();
      await pollers.stop();
      expect(Date.now() - started).toBeLessThan(500);
      expect(await redis.get(`${p}:tg-poll:{${bot.botId}}:lock`)).toBeNull();
      // An update pushed now waits for the next poller; nothing was lost to the aborted poll.
      fake.pushUpdate(token, fakeUpdates.text(1, 'kept'));
      expect(fake.pendingUpdates(token)).toHaveLength(1);
    });

    it('stops a bot that leaves the list and releases its lock', async () => {
      const token = newToken();
      const bot = await botFor(token);
      const p = prefix();
      let bots = [bot];
      const pollers = start('list', p, () => bots, []);
      await until(() => pollers.held().length === 1, 5_000, 'the lock');
      expect(await redis.get(`${p}:tg-poll:{${bot.botId}}:lock`)).toBe(pollers.owner);
      bots = [];
      await pollers.rescan();
      expect(pollers.held()).toEqual([]);
      expect(await redis.get(`${p}:tg-poll:{${bot.botId}}:lock`)).toBeNull();
    });

    it('deletes a webhook before polling and never logs the token', async () => {
      const token = newToken();
      const refused = newToken();
      const bot = await botFor(token);
      const refusedBot = { ...(await botFor(refused)), botId: 'refused' };
      fake.rejectToken(refused);
      await registerWebhook(
        new BotRegistry({ apiRoot: fake.apiRoot }).get(token, bot.botInfo),
        'https://flow.example',
        bot.botId,
        'sekret',
      );
      expect(fake.webhookOf(token)).not.toBeNull();
      const { log, lines } = capturingLogger();
      const received: Array<{ label: string; update: Update }> = [];
      start('logs', prefix(), () => [bot, refusedBot], received, { log });
      await fake.waitForCall('getUpdates', (c) => c.token === token && c.status === 200, 5_000);
      expect(fake.webhookOf(token)).toBeNull();
      await fake.waitForCall('deleteWebhook', (c) => c.token === refused, 5_000);
      fake.pushUpdate(token, fakeUpdates.start(3, 'clk'));
      await until(() => received.length === 1, 5_000, 'the update');
      await until(() => lines.some((l) => l.includes('refused the bot token')), 5_000, 'the refusal logged');
      const all = lines.join('\n');
      for (const t of [token, refused]) {
        expect(all).not.toContain(t);
        expect(all).not.toContain(t.split(':')[1]!);
      }
    });
  });
});

// ---------------------------------------------------------------------------------------------

describe('sender against the fake Bot API', () => {
  let fake: FakeTelegram;
  let registry: BotRegistry;
  let sender: TelegramSender;
  let bot: BotCredentials;
  let chat = 1000;

  beforeAll(async () => {
    fake = await startFakeTelegram();
    registry = new BotRegistry({ apiRoot: fake.apiRoot, maxBots: 10 });
    sender = new TelegramSender({ registry, limiter: null, backoffBaseMs: 20, log: silent });
    const token = newToken();
    bot = { botId: 'b-1', token, botInfo: await getMe(token, fake.apiRoot) };
  });
  afterAll(async () => {
    await fake.close();
  });

  const nextChat = () => ++chat;

  it('gets the bot user from getMe and keeps one Bot per token', async () => {
    expect(bot.botInfo).toMatchObject({
      id: Number(bot.token.split(':')[0]),
      is_bot: true,
      username: `bot${bot.token.split(':')[0]}`,
    });
    expect(parseBotInfo(JSON.parse(JSON.stringify(bot.botInfo)))).toEqual(bot.botInfo);
    expect(parseBotInfo({ id: 1, is_bot: true, first_name: 'B', username: 'b' })).toMatchObject({
      can_join_groups: false,
    });
    expect(parseBotInfo({ id: '1', is_bot: true })).toBeNull();
    expect(parseBotInfo(null)).toBeNull();
    expect(registry.get(bot.token, bot.botInfo)).toBe(registry.get(bot.token, bot.botInfo));
    const small = new BotRegistry({ apiRoot: `${fake.apiRoot}/`, maxBots: 2 });
    const first = small.get('1:a', bot.botInfo);
    small.get('2:b', bot.botInfo);
    small.get('3:c', bot.botInfo);
    expect(small.size).toBe(2);
    expect(small.get('1:a', bot.botInfo)).not.toBe(first);
  });

  it('sends text and buttons as given', async () => {
    const chatId = nextChat();
    const result = await sender.sendMessage(bot, chatId, 'Hello, <b>Ann</b> &amp; co!', [
      { text: 'Go', callbackData: 'step:offer' },
      [
        { text: 'Site', url: 'https://partner.example/?a=1' },
        { text: 'Later', callbackData: 'later' },
      ],
    ]);
    expect(result.ok).toBe(true);
    const call = await fake.waitForCall('sendMessage', (c) => c.params.chat_id === chatId);
    expect(result).toEqual({ ok: true, messageIds: [expect.any(Number)] });
    expect(call.token).toBe(bot.token);
    expect(call.params).toMatchObject({
      chat_id: chatId,
      text: 'Hello, <b>Ann</b> &amp; co!',
      parse_mode: 'HTML',
      reply_markup: {
        inline_keyboard: [
          [{ text: 'Go', callback_data: 'step:offer' }],
          [
            { text: 'Site', url: 'https://partner.example/?a=1' },
            { text: 'Later', callback_data: 'later' },
          ],
        ],
      },
    });
    // Without buttons: no keyboard.
    await sender.sendMessage(bot, chatId, 'plain');
    expect(fake.callsOf('sendMessage').find((c) => c.params.text === 'plain')!.params.reply_markup).toBeUndefined();
  });

  it('splits a long text into parts sent in order, buttons under the last', async () => {
    const chatId = nextChat();
    const text = Array.from({ length: 1500 }, (_, i) => `<b>w${i}</b> &amp;${i % 50 === 49 ? '\n\n' : ' '}`).join('');
    const result = await sender.sendMessage(bot, chatId, text, [{ text: 'Next', callbackData: 'n' }]);
    const calls = fake.callsOf('sendMessage').filter((c) => c.params.chat_id === chatId);
    expect(calls.length).toBeGreaterThan(1);
    expect(calls.every((c) => c.status === 200)).toBe(true); // the fake parses each part's HTML
    expect(result).toEqual({ ok: true, messageIds: expect.any(Array) });
    if (!result.ok) throw new Error('unreachable');
    expect(result.messageIds).toHaveLength(calls.length);
    expect([...result.messageIds].sort((x, y) => x - y)).toEqual(result.messageIds);
    expect(calls.slice(0, -1).every((c) => c.params.reply_markup === undefined)).toBe(true);
    expect(calls[calls.length - 1]!.params.reply_markup).toEqual({
      inline_keyboard: [[{ text: 'Next', callback_data: 'n' }]],
    });
    const sent = calls.map((c) => String(c.params.text)).join(' ');
    expect(words(stripTags(sent))).toEqual(words(stripTags(text)));
  });

  it('waits retry_after on 429 and then sends', async () => {
    const chatId = nextChat();
    fake.failNext('sendMessage', TELEGRAM_ERRORS.tooManyRequests(1), { chatId });
    const started = Date.now();
    const result = await sender.sendMessage(bot, chatId, 'after the wait');
    expect(result.ok).toBe(true);
    const calls = fake.callsOf('sendMessage').filter((c) => c.params.chat_id === chatId);
    expect(calls.map((c) => c.status)).toEqual([429, 200]);
    expect(calls[1]!.at - calls[0]!.at).toBeGreaterThanOrEqual(950);
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
  });

  it('gives up at once on a retry_after longer than it may wait', async () => {
    const chatId = nextChat();
    const patient = new TelegramSender({ registry, limiter: null, maxRetryAfterMs: 500 });
    fake.failNext('sendMessage', TELEGRAM_ERRORS.tooManyRequests(30), { chatId });
    const error = await patient.sendMessage(bot, chatId, 'x').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TelegramSendError);
    expect(error).toMatchObject({ errorCode: 429, retryable: true, retryAfterMs: 30_000 });
  });

  it('reports a blocked chat without retrying', async () => {
    for (const answer of [TELEGRAM_ERRORS.blocked(), TELEGRAM_ERRORS.deactivated(), TELEGRAM_ERRORS.chatNotFound()]) {
      const chatId = nextChat();
      fake.failNext('sendMessage', answer, { chatId, times: 3 });
      const result = await sender.sendMessage(bot, chatId, 'hello');
      expect(result).toEqual({ ok: false, blocked: true, reason: answer.description, messageIds: [] });
      expect(fake.callsOf('sendMessage').filter((c) => c.params.chat_id === chatId)).toHaveLength(1);
    }
  });

  it('retries server errors with backoff, then throws', async () => {
    const chatId = nextChat();
    fake.failNext('sendMessage', TELEGRAM_ERRORS.serverError(), { chatId, times: 2 });
    expect((await sender.sendMessage(bot, chatId, 'third time')).ok).toBe(true);
    expect(
      fake
        .callsOf('sendMessage')
        .filter((c) => c.params.chat_id === chatId)
        .map((c) => c.status),
    ).toEqual([500, 500, 200]);

    const failing = nextChat();
    fake.failNext('sendMessage', TELEGRAM_ERRORS.badGateway(), { chatId: failing, times: 10 });
    const error = await sender.sendMessage(bot, failing, 'never').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TelegramSendError);
    expect(error).toMatchObject({ errorCode: 502, retryable: true, attempts: 4 });
    expect(fake.callsOf('sendMessage').filter((c) => c.params.chat_id === failing)).toHaveLength(4);
  });

  it('answers button presses, best effort', async () => {
    expect(await sender.answerCallbackQuery(bot, 'q-1')).toBe(true);
    expect(fake.callsOf('answerCallbackQuery').at(-1)!.params).toEqual({ callback_query_id: 'q-1' });
    fake.failNext('answerCallbackQuery', {
      error_code: 400,
      description: 'Bad Request: query is too old and response timeout expired',
    });
    expect(await sender.answerCallbackQuery(bot, 'q-2', 'ok')).toBe(false);
  });

  it('does not retry a request Telegram refuses', async () => {
    const chatId = nextChat();
    const error = await sender.sendMessage(bot, chatId, '<b>unclosed').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TelegramSendError);
    expect(error).toMatchObject({ errorCode: 400, retryable: false, attempts: 1 });
    await expect(sender.sendMessage(bot, chatId, '  ')).rejects.toMatchObject({ retryable: false });
    await expect(
      sender.sendMessage(bot, chatId, 'x', [{ text: 'too long', callbackData: 'x'.repeat(65) }]),
    ).rejects.toBeInstanceOf(TelegramSendError);
  });

  it('never puts the token in an error', async () => {
    const token = newToken();
    const secretPart = token.split(':')[1]!;
    const refusedBot: BotCredentials = { botId: 'b-x', token, botInfo: bot.botInfo };
    fake.rejectToken(token);
    const leaks = (error: unknown) => {
      const e = error as Error;
      const text = [e.message, e.stack, JSON.stringify(e), String(e)].join('\n');
      return text.includes(token) || text.includes(secretPart);
    };

    const refused = await sender.sendMessage(refusedBot, nextChat(), 'x').catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(TelegramSendError);
    expect(refused).toMatchObject({ errorCode: 401 });
    expect(leaks(refused)).toBe(false);

    const getMeError = await getMe(token, fake.apiRoot).catch((e: unknown) => e);
    expect(getMeError).toBeInstanceOf(TelegramApiError);
    expect(getMeError).toMatchObject({ errorCode: 401 });
    expect(leaks(getMeError)).toBe(false);

    // Network failures: node-fetch's own error names the URL, token included.
    const nowhere = new BotRegistry({ apiRoot: 'http://127.0.0.1:9' });
    const offline = new TelegramSender({ registry: nowhere, limiter: null, backoffBaseMs: 1 });
    const network = await offline.sendMessage({ ...refusedBot }, 1, 'x').catch((e: unknown) => e);
    expect(network).toBeInstanceOf(TelegramSendError);
    expect(network).toMatchObject({ retryable: true });
    expect(leaks(network)).toBe(false);
    const raw = await nowhere
      .get(token, bot.botInfo)
      .api.getMe()
      .catch((e: unknown) => e);
    expect(leaks(raw)).toBe(false);
    expect(leaks((raw as { error?: unknown }).error)).toBe(false);
    const offlineGetMe = await getMe(token, 'http://127.0.0.1:9').catch((e: unknown) => e);
    expect(offlineGetMe).toBeInstanceOf(TelegramApiError);
    expect(leaks(offlineGetMe)).toBe(false);
  });

  it('a 429 holds the whole bot: a send to another chat waits for its retry_after too', async () => {
    const redis = new Redis(REDIS_URL);
    const p = uniquePrefix();
    try {
      const limited = new TelegramSender({ registry, limiter: new SendLimiter(redis, { prefix: p }) });
      const [a, b] = [nextChat(), nextChat()];
      fake.failNext('sendMessage', {
        error_code: 429,
        description: 'Too Many Requests: retry after 1',
        parameters: { retry_after: 1 },
      });
      const first = limited.sendMessage(bot, a, 'throttled once');
      // Once Telegram answered the 429 (and the sender held the bot), another chat's send is asked for.
      await fake.waitForCall('sendMessage', (c) => c.params.chat_id === a);
      await new Promise((resolve) => setTimeout(resolve, 100));
      const throttledAt = fake.callsOf('sendMessage').find((c) => c.params.chat_id === a)!.at;
      expect((await limited.sendMessage(bot, b, 'another chat')).ok).toBe(true);
      expect((await first).ok).toBe(true);
      const other = fake.callsOf('sendMessage').find((c) => c.params.chat_id === b)!;
      expect(other.at - throttledAt).toBeGreaterThanOrEqual(900);
    } finally {
      await dropPrefix(redis, p);
      redis.disconnect();
    }
  });

  it('keeps to 1 message a second per chat with the limiter', async () => {
    const redis = new Redis(REDIS_URL);
    const p = uniquePrefix();
    try {
      const limited = new TelegramSender({ registry, limiter: new SendLimiter(redis, { prefix: p }) });
      const chatId = nextChat();
      const [r1, r2] = await Promise.all([
        limited.sendMessage(bot, chatId, 'one'),
        limited.sendMessage(bot, chatId, 'two'),
      ]);
      expect(r1.ok && r2.ok).toBe(true);
      const calls = fake.callsOf('sendMessage').filter((c) => c.params.chat_id === chatId);
      expect(calls).toHaveLength(2);
      expect(calls[1]!.at - calls[0]!.at).toBeGreaterThanOrEqual(900);
    } finally {
      await dropPrefix(redis, p);
      redis.disconnect();
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe('webhook setup', () => {
  it('uses a webhook only with an https public URL', () => {
    expect(usesWebhook('https://flow.example')).toBe(true);
    expect(usesWebhook('https://flow.example/base/')).toBe(true);
    expect(usesWebhook('http://localhost:3000')).toBe(false);
    expect(usesWebhook('')).toBe(false);
    expect(usesWebhook(undefined)).toBe(false);
    expect(usesWebhook('not a url')).toBe(false);
    expect(webhookUrl('https://flow.example/', 'abc')).toBe('https://flow.example/telegram/abc');
  });

  it('registers the webhook with the secret and the update kinds', async () => {
    const fake = await startFakeTelegram();
    try {
      const token = newToken();
      const registry = new BotRegistry({ apiRoot: fake.apiRoot });
      const telegramBot = registry.get(token, await getMe(token, fake.apiRoot));
      await registerWebhook(telegramBot, 'https://flow.example', 'bot-1', 'secret_123');
      expect(fake.webhookOf(token)).toEqual({
        url: 'https://flow.example/telegram/bot-1',
        params: {
          url: 'https://flow.example/telegram/bot-1',
          secret_token: 'secret_123',
          allowed_updates: ['message', 'callback_query', 'my_chat_member'],
        },
      });
      await expect(registerWebhook(telegramBot, 'http://localhost:3000', 'bot-1', 'secret')).rejects.toThrow(/https/);
      fake.failNext('setWebhook', {
        error_code: 400,
        description: 'Bad Request: bad webhook: HTTPS url must be provided for webhook',
      });
      const error = await registerWebhook(telegramBot, 'https://flow.example', 'bot-1', 'secret').catch(
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(TelegramApiError);
      expect(String((error as Error).message)).not.toContain(token);
    } finally {
      await fake.close();
    }
  });
});
