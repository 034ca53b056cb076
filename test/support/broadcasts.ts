import { expect } from 'vitest';
import type { BroadcastProgress } from '../../src/http/routes/broadcasts.js';
import { waitFor, type Harness } from './harness.js';

/** A broadcast's progress as the API answers it (a 200, or the test fails). */
export async function broadcastProgressOf(h: Harness, bot: { botId: string }, id: string): Promise<BroadcastProgress> {
  const res = await h.api('GET', `/api/v1/bots/${bot.botId}/broadcasts/${id}`);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body as BroadcastProgress;
}

/** Polls a broadcast's progress until `ok` holds for it; resolves on that progress. */
export async function waitForBroadcast(
  h: Harness,
  bot: { botId: string },
  id: string,
  ok: (progress: BroadcastProgress) => boolean,
  what: string,
  timeoutMs = 20_000,
  intervalMs = 10,
): Promise<BroadcastProgress> {
  return waitFor(
    async () => {
      const progress = await broadcastProgressOf(h, bot, id);
      return ok(progress) ? progress : null;
    },
    timeoutMs,
    what,
    intervalMs,
  );
}
