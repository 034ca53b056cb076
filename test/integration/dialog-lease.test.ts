/**
 * DialogLease: one handler at a time per dialog across processes. A second taker finds it busy and
 * leaves a note; the holder sees the note when it lets go and keeps the lease to look again.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DialogLease } from '../../src/redis/dialog-lease.js';
import { dropPrefix, REDIS_URL, uniquePrefix, waitFor } from '../support/harness.js';

const BOT = '0b9c2f61-4f0e-4d8e-9b7a-3f7c1e2d4a55';
const prefix = uniquePrefix();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
let redis: Redis;
let chat = 1;

beforeAll(() => {
  redis = new Redis(REDIS_URL);
});
afterAll(async () => {
  redis.disconnect();
  await dropPrefix(prefix);
});

describe('DialogLease', () => {
  it('is taken by one holder; a second taker finds it busy', async () => {
    const [one, two] = [new DialogLease(redis, prefix), new DialogLease(redis, prefix)];
    const chatId = chat++;
    const hold = await one.acquire(BOT, chatId);
    expect(hold).not.toBeNull();
    expect(hold!.held).toBe(true);
    expect(await two.acquire(BOT, chatId)).toBeNull();
    await hold!.drop();
  });

  it('leases each dialog on its own', async () => {
    const lease = new DialogLease(redis, prefix);
    const chatId = chat++;
    const first = await lease.acquire(BOT, chatId);
    const other = await lease.acquire(BOT, chat++);
    expect(first).not.toBeNull();
    expect(other).not.toBeNull();
    await Promise.all([first!.drop(), other!.drop()]);
  });

  it('without a note, the holder lets go at once and the next taker gets it', async () => {
    const lease = new DialogLease(redis, prefix);
    const chatId = chat++;
    const hold = await lease.acquire(BOT, chatId);
    expect(await hold!.releaseIfDone()).toBe(true);
    expect(hold!.held).toBe(false);
    const next = await lease.acquire(BOT, chatId);
    expect(next).not.toBeNull();
    await next!.drop();
  });

  it('a busy taker leaves a note: the holder keeps the lease to look again, then lets go', async () => {
    const lease = new DialogLease(redis, prefix);
    const chatId = chat++;
    const hold = await lease.acquire(BOT, chatId);
    expect(await lease.acquire(BOT, chatId), 'busy').toBeNull();
    expect(await hold!.releaseIfDone(), 'more came in meanwhile: look again').toBe(false);
    expect(hold!.held).toBe(true);
    expect(await lease.acquire(BOT, chatId), 'still held while the holder looks again').toBeNull();
    expect(await hold!.releaseIfDone(), 'a second note').toBe(false);
    expect(await hold!.releaseIfDone(), 'nothing new since').toBe(true);
    const next = await lease.acquire(BOT, chatId);
    expect(next).not.toBeNull();
    await next!.drop();
  });

  it('drop lets go whatever notes were left (the failed job retries)', async () => {
    const lease = new DialogLease(redis, prefix);
    const chatId = chat++;
    const hold = await lease.acquire(BOT, chatId);
    expect(await lease.acquire(BOT, chatId)).toBeNull();
    await hold!.drop();
    expect(hold!.held).toBe(false);
    const next = await lease.acquire(BOT, chatId);
    expect(next).not.toBeNull();
    await next!.drop();
  });

  it('is extended while held, past its time to live', async () => {
    const lease = new DialogLease(redis, prefix, 900); // extended every 500 ms
    const chatId = chat++;
    const hold = await lease.acquire(BOT, chatId);
    await sleep(1_300);
    expect(hold!.held).toBe(true);
    expect(await lease.acquire(BOT, chatId)).toBeNull();
    await hold!.drop();
  });

  it("a lease that expired is taken by another: the first holder learns it is no longer held and releases nothing of the new holder's", async () => {
    const stale = new DialogLease(redis, prefix, 100); // expires before its first extension (500 ms)
    const chatId = chat++;
    const first = await stale.acquire(BOT, chatId);
    await sleep(200);
    const lease = new DialogLease(redis, prefix);
    const second = await lease.acquire(BOT, chatId);
    expect(second, 'taken once expired').not.toBeNull();
    // The first holder's extension (at 500 ms) finds the lease not its own.
    await waitFor(async () => !first!.held, 3_000, 'the first holder to learn it lost the lease');
    await first!.releaseIfDone();
    await first!.drop();
    expect(await lease.acquire(BOT, chatId), 'the second holder still holds it').toBeNull();
    expect(second!.held).toBe(true);
    await second!.drop();
  });
});
