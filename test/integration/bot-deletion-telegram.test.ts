import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createScriptedBot } from '../support/bot-scripts.js';
import { startHarness, type Harness } from '../support/harness.js';

// With an https PUBLIC_URL, a bot's updates come by webhook: deleting the bot tells Telegram to stop.
let h: Harness;
beforeAll(async () => {
  h = await startHarness({ env: { PUBLIC_URL: 'https://flowpost.test' } });
});
afterAll(async () => {
  await h?.close();
});

const SCRIPT = { start: 'hello', steps: [{ key: 'hello', type: 'send_message', text: 'Hello!' }] };

describe('deleting a bot with a Telegram token', () => {
  it('removes its webhook at Telegram, keeping the updates Telegram holds', async () => {
    const bot = await createScriptedBot(h, SCRIPT);
    expect(h.telegram.callsOf('setWebhook', bot.token)).toHaveLength(1);
    const res = await h.api('DELETE', `/api/v1/bots/${bot.botId}?confirm=${bot.botId}`);
    expect(res.status).toBe(204);
    const calls = h.telegram.callsOf('deleteWebhook', bot.token);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.params.drop_pending_updates).toBe(false);
  });

  it('is deleted all the same when Telegram cannot be told, with a warning header', async () => {
    const bot = await createScriptedBot(h, SCRIPT);
    h.telegram.failNext('deleteWebhook', { error_code: 500, description: 'Internal Server Error' });
    const res = await fetch(`${h.baseUrl}/api/v1/bots/${bot.botId}?confirm=${bot.botId}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${h.config.adminApiKey}` },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('warning')).toMatch(/Telegram could not be told/);
    expect((await h.api('GET', `/api/v1/bots/${bot.botId}`)).status).toBe(404);
  });
});
