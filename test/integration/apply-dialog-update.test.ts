import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppliedDialog, DialogUpdateInput } from '../../src/db/dialog-writer.js';
import { applyDialogUpdate, toUpdateInput } from '../../src/jobs/apply-dialog-update.js';
import type { DialogUpdateJob } from '../../src/jobs/dialog-update-job.js';
import { createLogger } from '../../src/config/log.js';
import { SequenceFloor } from '../../src/redis/sequence-floor.js';
import { dropPrefix, REDIS_URL, uniquePrefix } from '../support/harness.js';

const BOT = '6f1f3f3e-8c4e-4a57-9d7e-2a1f0b0c1d2e';
const log = createLogger('silent');
let redis: Redis;
const prefix = uniquePrefix();

beforeAll(() => {
  redis = new Redis(REDIS_URL);
});
afterAll(async () => {
  redis.disconnect();
  await dropPrefix(prefix);
});

function applied(update: DialogUpdateInput): AppliedDialog {
  return { botId: update.botId, chatId: update.chatId, journaled: Boolean(update.input) };
}

describe('toUpdateInput', () => {
  it("merges a postback's values at once and journals its step move with the status it came with", () => {
    const input = toUpdateInput(
      { botId: BOT, chatId: 5, patch: { fields: { a: 1 }, status: 'auto', stepId: 'id-x', stepKey: 'x' } },
      42,
    );
    expect(input.patch).toEqual({ fields: { a: 1 }, status: 'auto' });
    expect(input.input).toEqual({ kind: 'move', stepId: 'id-x', stepKey: 'x', status: 'auto' });
    expect(toUpdateInput({ botId: BOT, chatId: 5, patch: { status: 'manual' } }, 43).input).toBeUndefined();
  });

  it('journals a Telegram update under its token and update_id', () => {
    const input = toUpdateInput({ botId: BOT, chatId: 5, telegram: { update: { update_id: 77 }, tokenKey: 'k1' } }, 44);
    expect(input.dedupeKey).toBe('tg:k1:77');
    expect(input.input).toMatchObject({ kind: 'telegram', tokenKey: 'k1' });
  });
});

describe('applyDialogUpdate, without BullMQ', () => {
  it('applies an update with its order and wakes the dialog', async () => {
    const floor = SequenceFloor.forQueue(prefix, 'dialog-updates');
    const seen: Array<[string, number]> = [];
    const outcome = await applyDialogUpdate(
      { id: '10', data: { botId: BOT, chatId: 5, patch: { stepId: 'id-x' } } },
      {
        redis,
        floor,
        log,
        apply: async (update) => applied(update),
        requeue: async () => expect.unreachable('nothing to queue again'),
        onApplied: async (a, seq) => void seen.push([a.botId, seq]),
      },
    );
    expect(outcome).toBe('applied');
    expect(seen).toEqual([[BOT, 10]]);
  });

  it('queues again, without applying, an update drawn below the counter restored after Redis lost it', async () => {
    const floor = SequenceFloor.forQueue(prefix, 'dialog-updates');
    floor.observe(500); // this process has seen orders up to 500; Redis then came back empty
    await redis.del(`${prefix}:dialog-updates:id`, `${prefix}:dialog-updates:id:reset-below`);
    const job: DialogUpdateJob = { botId: BOT, chatId: 6, patch: { fields: { a: 'late' } } };
    const requeued: DialogUpdateJob[] = [];
    const outcome = await applyDialogUpdate(
      { id: '3', data: job },
      {
        redis,
        floor,
        log,
        apply: async () => expect.unreachable('a low order is not applied'),
        requeue: async (j) => void requeued.push(j),
      },
    );
    expect(outcome).toBe('requeued');
    expect(requeued).toEqual([job]);
    expect(Number(await redis.get(`${prefix}:dialog-updates:id`))).toBe(500);
    // Orders drawn since then (the counter went on to 1,000): one handled late, at or below this
    // process's floor but above the reset mark, is applied as usual.
    await redis.set(`${prefix}:dialog-updates:id`, '1000');
    const other = SequenceFloor.forQueue(prefix, 'dialog-updates');
    other.observe(1_000);
    const late = await applyDialogUpdate(
      { id: '700', data: job },
      {
        redis,
        floor: other,
        log,
        apply: async (u) => applied(u),
        requeue: async () => expect.unreachable('700 was drawn above the reset'),
      },
    );
    expect(late).toBe('applied');
  });
});
