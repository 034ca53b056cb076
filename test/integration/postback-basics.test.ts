import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBotWithEndpoint, startHarness, waitFor, type Harness } from '../support/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ workers: true });
});
afterAll(async () => {
  await h?.close();
});

async function dialog(botId: string, chatId: number) {
  const res = await h.api('GET', `/api/v1/bots/${botId}/dialogs/${chatId}`);
  return res.status === 200 ? res.body : null;
}

describe("the seed's postback examples", () => {
  it('stores refID and userBalance for a user who has not started yet', async () => {
    const { botId, url } = await createBotWithEndpoint(h);
    const first = await fetch(`${url}?chatId=1227280&refID=12345`);
    expect(first.status).toBe(202);
    const body = (await first.json()) as { ok: boolean; updateId: string };
    expect(body.ok).toBe(true);
    expect(body.updateId).toMatch(/^\d+$/);
    expect((await fetch(`${url}?chatId=1227280&userBalance=5000`)).status).toBe(202);

    const d = await waitFor(async () => {
      const found = await dialog(botId, 1227280);
      return found?.fields.userBalance ? found : null;
    });
    expect(d.fields).toEqual({ refID: '12345', userBalance: '5000' });
    expect(d.startedAt).toBeNull();
    expect(d.status).toBe('auto');
  });
});
