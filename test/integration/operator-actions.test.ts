import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

// Telegram's own per-chat limit (1 message a second) is left on: operator messages must keep it.
let h: Harness;
beforeAll(async () => {
  h = await startHarness({ workers: true, env: { PUBLIC_URL: 'https://flowpost.test' } });
});
afterAll(async () => {
  await h?.close();
});

let chat = 940_000;
const nextChat = () => chat++;

const SCRIPT = {
  start: 'hello',
  steps: [
    { key: 'hello', type: 'send_message', text: 'Hello!', next: 'ask' },
    { key: 'ask', type: 'input', text: 'Your e-mail?', field: 'email', next: 'thanks' },
    { key: 'thanks', type: 'send_message', text: 'Thanks' },
    { key: 'offer', type: 'send_message', text: 'An offer' },
  ],
};

interface Line {
  direction: string;
  sender: string;
  text: string | null;
  telegramMessageId: number | null;
}

async function lines(bot: TestBot, chatId: number): Promise<Line[]> {
  const res = await h.api('GET', `/api/v1/bots/${bot.botId}/dialogs/${chatId}/messages?limit=200`);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body.items as Line[];
}

/** A started dialog waiting at the `ask` input step. */
async function startedDialog(): Promise<{ bot: TestBot; chatId: number }> {
  const bot = await createScriptedBot(h, SCRIPT);
  const chatId = nextChat();
  await sendUpdate(h, bot, fakeUpdates.start(chatId));
  await waitForMessages(h, bot, chatId, 2, 20_000);
  return { bot, chatId };
}

const path = (bot: TestBot, chatId: number | string, rest = '') => `/api/v1/bots/${bot.botId}/dialogs/${chatId}${rest}`;

async function statusOf(bot: TestBot, chatId: number, status: string): Promise<Record<string, unknown>> {
  return waitFor(
    async () => {
      const dialog = await dialogOf(h, bot, chatId);
      return dialog?.status === status ? dialog : null;
    },
    20_000,
    `dialog ${chatId} ${status}`,
  );
}

describe('operator actions', () => {
  it('takes a dialog over, writes to the user, and hands it back at a step, each in the dialog’s order', async () => {
    const { bot, chatId } = await startedDialog();

    const takeover = await h.api('POST', path(bot, chatId, '/takeover'));
    expect(takeover.status, JSON.stringify(takeover.body)).toBe(202);
    expect(takeover.body.seq).toMatch(/^\d+$/);
    await statusOf(bot, chatId, 'manual');

    // In manual the script no longer answers: the user's reply is kept, nothing is sent.
    await sendUpdate(h, bot, fakeUpdates.text(chatId, 'hello? <anyone>'));
    await waitFor(async () => ((await lines(bot, chatId)).length >= 3 ? true : null), 10_000, 'the reply recorded');

    const reply = await h.api('POST', path(bot, chatId, '/messages'), { text: 'Hi, I am <Anna> & here' });
    expect(reply.status, JSON.stringify(reply.body)).toBe(202);
    expect(Number(reply.body.seq)).toBeGreaterThan(Number(takeover.body.seq));
    const texts = await waitForMessages(h, bot, chatId, 3);
    // Plain text for the user: escaped for Telegram's HTML parse mode.
    expect(texts[2]).toBe('Hi, I am &lt;Anna&gt; &amp; here');
    expect(messagesTo(h, bot, chatId)[2]!.params.parse_mode).toBe('HTML');
    const transcript = await waitFor(
      async () => {
        const got = await lines(bot, chatId);
        return got.some((l) => l.sender === 'operator') ? got : null;
      },
      10_000,
      'the operator line',
    );
    expect(transcript.map((l) => [l.direction, l.sender])).toEqual(
      [
        ['in', 'user'],
        ['out', 'script'],
        ['out', 'script'],
        ['in', 'user'],
        ['out', 'operator'],
      ].slice(0, transcript.length),
    );
    const operatorLine = transcript.find((l) => l.sender === 'operator')!;
    expect(operatorLine.text).toBe('Hi, I am &lt;Anna&gt; &amp; here');
    expect(operatorLine.telegramMessageId).toEqual(expect.any(Number));
    expect(transcript).toHaveLength(5);

    // Hand back at `offer`: the step runs at once, as a postback's move does.
    const release = await h.api('POST', path(bot, chatId, '/release'), { stepId: 'offer' });
    expect(release.status, JSON.stringify(release.body)).toBe(202);
    expect((await waitForMessages(h, bot, chatId, 4))[3]).toBe('An offer');
    const dialog = await statusOf(bot, chatId, 'auto');
    expect(dialog.stepKey).toBe('offer');
  });

  it('hands back without a step (an empty body): auto at the step the dialog is on, nothing sent', async () => {
    const { bot, chatId } = await startedDialog();
    expect((await h.api('POST', path(bot, chatId, '/takeover'))).status).toBe(202);
    await statusOf(bot, chatId, 'manual');
    const res = await fetch(`${h.baseUrl}${path(bot, chatId, '/release')}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${h.config.adminApiKey}` },
    });
    expect(res.status, await res.text()).toBe(202);
    const dialog = await statusOf(bot, chatId, 'auto');
    expect(dialog.stepKey).toBe('ask');
    // The input step answers the user's next reply again.
    await sendUpdate(h, bot, fakeUpdates.text(chatId, 'a@b.example'));
    expect((await waitForMessages(h, bot, chatId, 3))[2]).toBe('Thanks');
    expect(messagesTo(h, bot, chatId)).toHaveLength(3);
  });

  it('queued at once, a message, a postback move and another message reach the user in that order', async () => {
    const { bot, chatId } = await startedDialog();
    const first = h.api('POST', path(bot, chatId, '/messages'), { text: 'one' });
    const firstSeq = (await first).body.seq;
    const move = await fetch(`${bot.postbackUrl}?chatId=${chatId}&stepId=${bot.steps.get('offer')}`);
    expect(move.status).toBe(202);
    const third = await h.api('POST', path(bot, chatId, '/messages'), { text: 'three' });
    expect(Number(third.body.seq)).toBeGreaterThan(Number(firstSeq));
    const texts = await waitForMessages(h, bot, chatId, 5, 30_000);
    expect(texts.slice(2)).toEqual(['one', 'An offer', 'three']);
  });

  it('keeps the per-chat send limit: three messages to one chat go about a second apart', async () => {
    const { bot, chatId } = await startedDialog();
    for (const text of ['a', 'b', 'c']) {
      expect((await h.api('POST', path(bot, chatId, '/messages'), { text })).status).toBe(202);
    }
    await waitForMessages(h, bot, chatId, 5, 30_000);
    const calls = messagesTo(h, bot, chatId).slice(2);
    expect(calls.map((c) => c.params.text)).toEqual(['a', 'b', 'c']);
    // Two seconds apart on Redis' clock; arrivals may bunch up by however late the first one was
    // (without the limit they come within milliseconds).
    expect(calls[2]!.at - calls[0]!.at).toBeGreaterThanOrEqual(1_500);
  });

  it('sets typed fields and tags, in the dialog’s order, refusing a value its field’s type does not take', async () => {
    const { bot, chatId } = await startedDialog();
    expect(
      (await h.api('PUT', `/api/v1/bots/${bot.botId}/fields/balance`, { name: 'Balance', type: 'number' })).status,
    ).toBe(200);
    const bad = await h.api('PATCH', path(bot, chatId), { fields: { balance: 'lots' } });
    expect(bad.status).toBe(422);
    expect(bad.body.error.param).toBe('fields.balance');

    const set = await h.api('PATCH', path(bot, chatId), {
      fields: { balance: '150.5', note: 'called back' },
      addTags: ['vip', 'called'],
    });
    expect(set.status, JSON.stringify(set.body)).toBe(202);
    await waitFor(async () => ((await dialogOf(h, bot, chatId))?.tags.includes('vip') ? true : null), 10_000, 'tags');
    let dialog = await dialogOf(h, bot, chatId);
    expect(dialog.fields).toMatchObject({ balance: 150.5, note: 'called back' });
    expect(dialog.tags).toEqual(['called', 'vip']);

    const unset = await h.api('PATCH', path(bot, chatId), { fields: { note: null }, removeTags: ['called'] });
    expect(unset.status).toBe(202);
    dialog = await waitFor(
      async () => {
        const d = await dialogOf(h, bot, chatId);
        return d && !d.tags.includes('called') ? d : null;
      },
      10_000,
      'tag removed',
    );
    expect(dialog.fields.note).toBeUndefined();
    expect(dialog.tags).toEqual(['vip']);
  });

  it('names bad input, an unknown dialog or step, and refuses every route without the key', async () => {
    const { bot, chatId } = await startedDialog();
    const cases: Array<[string, string, unknown, number, string | undefined]> = [
      ['POST', path(bot, 'abc', '/takeover'), undefined, 400, 'chatId'],
      ['POST', path(bot, 123_456_789, '/takeover'), undefined, 404, 'chatId'],
      ['POST', path(bot, chatId, '/release'), { stepId: 'nowhere' }, 422, 'stepId'],
      ['POST', path(bot, chatId, '/release'), { stepId: 5 }, 400, 'stepId'],
      ['POST', path(bot, chatId, '/release'), { step: 'offer' }, 400, undefined],
      ['POST', path(bot, chatId, '/messages'), { text: '   ' }, 400, 'text'],
      ['POST', path(bot, chatId, '/messages'), { text: 'x'.repeat(4097) }, 400, 'text'],
      ['POST', path(bot, chatId, '/messages'), {}, 400, 'text'],
      ['PATCH', path(bot, chatId), {}, 400, undefined],
      ['PATCH', path(bot, chatId), { fields: { 'bad key': 'x' } }, 400, 'fields.bad key'],
      ['PATCH', path(bot, chatId), { addTags: ['a\nb'] }, 400, 'addTags.0'],
    ];
    for (const [method, url, body, status, param] of cases) {
      const res = await h.api(method, url, body);
      expect(res.status, `${method} ${url} ${JSON.stringify(body)}: ${JSON.stringify(res.body)}`).toBe(status);
      expect(res.body.error.param, `${method} ${url} ${JSON.stringify(body)}`).toBe(param);
    }
    const unknownBot = await h.api(
      'POST',
      `/api/v1/bots/00000000-0000-4000-8000-000000000000/dialogs/${chatId}/takeover`,
    );
    expect(unknownBot.status).toBe(404);

    for (const [method, rest] of [
      ['POST', '/takeover'],
      ['POST', '/release'],
      ['POST', '/messages'],
      ['PATCH', ''],
    ] as const) {
      const res = await fetch(`${h.baseUrl}${path(bot, chatId, rest)}`, {
        method,
        headers: { 'content-type': 'application/json' },
        body: '{"text":"x"}',
      });
      expect(res.status, `${method} ${rest}`).toBe(401);
      await res.arrayBuffer();
    }
    // Nothing was queued for the dialog by any of these.
    expect(messagesTo(h, bot, chatId)).toHaveLength(2);
    expect((await dialogOf(h, bot, chatId)).status).toBe('auto');
  });
});
