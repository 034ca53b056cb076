/**
 * A request's id on its log lines, web and worker: the caller's X-Request-Id (when plausible) or a
 * new one, answered back, on the access line and on the worker's line for the job it queued.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/config/log.js';
import { createScriptedBot, type TestBot } from '../support/bot-scripts.js';
import { fakeUpdates } from '../support/fake-telegram.js';
import { createBotWithEndpoint, startHarness, waitFor, type Harness } from '../support/harness.js';

type Line = Record<string, unknown>;
const lines: Line[] = [];
const log = createLogger('debug', 'flowpost', { write: (line: string) => void lines.push(JSON.parse(line) as Line) });

let h: Harness;
let url: string;
let bot: TestBot;

beforeAll(async () => {
  h = await startHarness({ workers: true, log: log.child({ role: 'all' }) });
  url = (await createBotWithEndpoint(h)).url;
  bot = await createScriptedBot(h, { start: 'a', steps: [{ key: 'a', type: 'send_message', text: 'hi' }] });
});
afterAll(async () => {
  await h?.close();
});

const linesOf = (requestId: string) => lines.filter((line) => line.requestId === requestId);

describe('request ids', () => {
  it("takes the caller's X-Request-Id, answers it, and puts it on the web line and the worker's line for the job", async () => {
    const requestId = 'trace-42.a:b_c-d';
    const response = await fetch(`${url}?chatId=501&a=1`, { headers: { 'x-request-id': requestId } });
    expect(response.status).toBe(202);
    expect(response.headers.get('x-request-id')).toBe(requestId);
    const { updateId } = (await response.json()) as { updateId: string };

    const access = linesOf(requestId).find((line) => line.msg === 'request');
    expect(access).toMatchObject({
      role: 'all',
      component: 'http',
      method: 'GET',
      route: 'updateDialog',
      status: 202,
      requestId,
    });
    expect(typeof access!.ms).toBe('number');
    const workerLine = await waitFor(
      async () => linesOf(requestId).find((line) => line.queue === 'dialog-updates' && line.jobId === updateId),
      10_000,
      "the worker's line for the job",
    );
    expect(workerLine).toMatchObject({ msg: 'job completed', requestId, role: 'all' });
  });

  it('makes up an id when none is given or the given one is not a plausible id', async () => {
    for (const given of [undefined, 'has spaces in it', 'x'.repeat(129), 'semi;colon']) {
      const response = await fetch(`${url}?chatId=502&a=1`, given ? { headers: { 'x-request-id': given } } : {});
      expect(response.status).toBe(202);
      const id = response.headers.get('x-request-id')!;
      expect(id).toMatch(/^[0-9a-f]{12}-[0-9a-z]+$/);
      expect(id).not.toBe(given);
      expect(linesOf(id).some((line) => line.msg === 'request')).toBe(true);
    }
  });

  it("carries a Telegram webhook update's request id to the worker's line", async () => {
    const requestId = 'tg-update-1';
    const response = await fetch(`${h.baseUrl}/telegram/${bot.botId}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-telegram-bot-api-secret-token': bot.secret,
        'x-request-id': requestId,
      },
      body: JSON.stringify({ update_id: 9001, ...fakeUpdates.start(503) }),
    });
    expect(response.status).toBe(200);
    await waitFor(
      async () => linesOf(requestId).find((line) => line.queue === 'dialog-updates' && line.msg === 'job completed'),
      10_000,
      "the worker's line for the Telegram update",
    );
  });

  it('logs refusals at info with the route name, and never the Authorization header', async () => {
    const requestId = 'refused-1';
    const response = await fetch(`${h.baseUrl}/api/v1/bots/00000000-0000-4000-8000-000000000000`, {
      headers: { authorization: 'Bearer not-the-admin-key-but-secret', 'x-request-id': requestId },
    });
    expect(response.status).toBe(401);
    const access = linesOf(requestId).find((line) => line.msg === 'request');
    expect(access).toMatchObject({ level: 30, route: 'management', status: 401 });
    expect(JSON.stringify(lines)).not.toContain('not-the-admin-key-but-secret');
  });
});
