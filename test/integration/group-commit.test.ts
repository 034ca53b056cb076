/**
 * GroupCommit: items submitted while a flush is in flight gather into the next one. Driven by hand
 * (each flush waits until the test lets it finish), then through DecisionRecorder, which records
 * many dialogs' decisions in one statement this way.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertBot } from '../../src/db/bots.js';
import { createDb, type Db } from '../../src/db/connection.js';
import { DecisionRecorder, loadOpenInputs } from '../../src/db/dialog-inputs.js';
import { applyDialogUpdates } from '../../src/db/dialog-writer.js';
import { GroupCommit } from '../../src/db/group-commit.js';
import type { Decision } from '../../src/domain/inputs/types.js';
import { databaseUrl } from '../support/database.js';

/** A flush the test finishes by hand: every call is kept with its items. */
function manualFlush<I, O>() {
  const calls: Array<{ items: I[]; finish(results: O[]): void; fail(error: unknown): void }> = [];
  const flush = (items: I[]) =>
    new Promise<O[]>((resolve, reject) => {
      calls.push({ items, finish: resolve, fail: reject });
    });
  return { calls, flush };
}

/** Lets queued microtasks and promise callbacks run. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('GroupCommit', () => {
  it('flushes a lone item at once, in a batch of its own', async () => {
    const { calls, flush } = manualFlush<number, string>();
    const group = new GroupCommit(flush);
    const result = group.submit(1);
    await settle();
    expect(calls.map((c) => c.items)).toEqual([[1]]);
    calls[0]!.finish(['one']);
    await expect(result).resolves.toBe('one');
  });

  it('gathers the items submitted while a flush is in flight into the next batch, each with its own result', async () => {
    const { calls, flush } = manualFlush<number, string>();
    const group = new GroupCommit(flush);
    const first = group.submit(1);
    await settle();
    const rest = [2, 3, 4].map((n) => group.submit(n));
    await settle();
    expect(
      calls.map((c) => c.items),
      'nothing else flushes while one is in flight',
    ).toEqual([[1]]);
    calls[0]!.finish(['r1']);
    await settle();
    expect(calls.map((c) => c.items)).toEqual([[1], [2, 3, 4]]);
    calls[1]!.finish(['r2', 'r3', 'r4']);
    await expect(first).resolves.toBe('r1');
    await expect(Promise.all(rest)).resolves.toEqual(['r2', 'r3', 'r4']);
  });

  it('items submitted in the same tick go out together', async () => {
    const { calls, flush } = manualFlush<number, number>();
    const group = new GroupCommit(flush);
    const results = [1, 2, 3].map((n) => group.submit(n));
    await settle();
    expect(calls.map((c) => c.items)).toEqual([[1, 2, 3]]);
    calls[0]!.finish([10, 20, 30]);
    await expect(Promise.all(results)).resolves.toEqual([10, 20, 30]);
  });

  it('caps a batch at maxBatch items, the rest going in the following batches in submission order', async () => {
    const { calls, flush } = manualFlush<number, number>();
    const group = new GroupCommit(flush, 2);
    const results = [1, 2, 3, 4, 5].map((n) => group.submit(n));
    for (let i = 0; i < 3; i++) {
      await settle();
      const call = calls[i]!;
      call.finish(call.items.map((n) => n * 10));
    }
    expect(calls.map((c) => c.items)).toEqual([[1, 2], [3, 4], [5]]);
    await expect(Promise.all(results)).resolves.toEqual([10, 20, 30, 40, 50]);
  });

  it('a failed flush rejects every item of its batch with its error, and the next batch still goes', async () => {
    const { calls, flush } = manualFlush<number, string>();
    const group = new GroupCommit(flush);
    const failed = [1, 2].map((n) => group.submit(n));
    await settle();
    const later = group.submit(3);
    const boom = new Error('statement failed');
    calls[0]!.fail(boom);
    for (const result of failed) await expect(result).rejects.toBe(boom);
    await settle();
    expect(calls.map((c) => c.items)).toEqual([[1, 2], [3]]);
    calls[1]!.finish(['three']);
    await expect(later).resolves.toBe('three');
  });

  it('runs up to maxParallel flushes at once', async () => {
    const { calls, flush } = manualFlush<number, number>();
    const group = new GroupCommit(flush, 1, 2);
    const results = [1, 2, 3].map((n) => group.submit(n));
    await settle();
    expect(
      calls.map((c) => c.items),
      'two in flight, the third waits',
    ).toEqual([[1], [2]]);
    calls[1]!.finish([2]);
    await settle();
    expect(calls.map((c) => c.items)).toEqual([[1], [2], [3]]);
    calls[0]!.finish([1]);
    calls[2]!.finish([3]);
    await expect(Promise.all(results)).resolves.toEqual([1, 2, 3]);
  });
});

describe('DecisionRecorder: decisions of many dialogs recorded together', () => {
  let db: Db;
  let botId: string;

  beforeAll(async () => {
    db = createDb(databaseUrl());
    botId = (await insertBot(db, { name: 'group commit', timezone: 'UTC', telegram: null })).id;
  });
  afterAll(async () => {
    await db?.destroy();
  });

  const recorded = (fields: Record<string, string>): Decision => ({
    outcome: 'recorded',
    changes: { fields },
    effects: [],
    log: [],
  });

  it('each decision submitted at once gets its own outcome: written, or null when its dialog changed since it was read', async () => {
    const chats = [401, 402, 403, 404];
    await applyDialogUpdates(
      db,
      chats.map((chatId, i) => ({ botId, chatId, seq: 10 + i, input: { kind: 'move', stepKey: 'x' } })),
    );
    const loaded = await Promise.all(
      chats.map(async (chatId) => ({ chatId, ...(await loadOpenInputs(db, { botId, chatId }))! })),
    );
    // Dialog 403 is written by a postback after it was read: its decision must not land.
    await applyDialogUpdates(db, [{ botId, chatId: 403, seq: 50, patch: { fields: { late: 'postback' } } }]);

    const recorder = new DecisionRecorder(db);
    const results = await Promise.all(
      loaded.map(({ chatId, dialog, inputs }) =>
        recorder.record({
          botId,
          chatId,
          dialog,
          seq: inputs[0]!.seq,
          decision: recorded({ by: `chat ${chatId}` }),
          incomingPayload: null,
        }),
      ),
    );
    expect(results.map((r) => r?.state.fields.by ?? null)).toEqual(['chat 401', 'chat 402', null, 'chat 404']);
    for (const [i, r] of results.entries())
      if (r) expect(r.version, `chat ${chats[i]}`).toBe(loaded[i]!.dialog.version + 1);

    const states = await db('dialog_inputs')
      .where({ bot_id: botId })
      .whereIn('chat_id', chats)
      .orderBy('chat_id')
      .pluck('state');
    expect(states).toEqual(['done', 'done', 'pending', 'done']);
    const late = await db('dialogs').where({ bot_id: botId, chat_id: 403 }).first('fields');
    expect(late.fields).toEqual({ late: 'postback' });
  });
});
