/**
 * applyDialogUpdates: a batch of accepted updates merged into their dialogs (newest write per key),
 * written back only over the version read, absent dialogs created, script inputs journaled.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertBot } from '../../src/db/bots.js';
import { createDb, type Db } from '../../src/db/connection.js';
import { applyDialogUpdates, splitPostback, type DialogUpdateInput } from '../../src/db/dialog-writer.js';
import { databaseUrl } from '../support/database.js';

let db: Db;
let botId: string;
let nextChat = 2_000;
let nextOrder = 5_000;
/** `count` new acceptance orders, ascending (unique in this file, as the web tier's counter makes them). */
const orders = (count: number) => Array.from({ length: count }, () => (nextOrder += 10));

beforeAll(async () => {
  db = createDb(databaseUrl());
  botId = (await insertBot(db, { name: 'writer', timezone: 'UTC', telegram: null })).id;
});
afterAll(async () => {
  await db?.destroy();
});

const dialogRow = (chatId: number) => db('dialogs').where({ bot_id: botId, chat_id: chatId }).first();
const journal = (chatId: number) =>
  db('dialog_inputs')
    .where({ bot_id: botId, chat_id: chatId })
    .orderBy('seq')
    .select('seq', 'kind', 'state', 'dedupe_key');
const fields = (chatId: number, seq: number, values: Record<string, string>): DialogUpdateInput => ({
  botId,
  chatId,
  seq,
  patch: { fields: values },
});

describe('splitPostback', () => {
  it('keeps the values to merge at once apart from the step move, which carries the status it came with', () => {
    expect(splitPostback({ fields: { a: 1 }, status: 'manual', stepId: 'id-1', stepKey: 'one' })).toEqual({
      values: { fields: { a: 1 }, status: 'manual' },
      move: { kind: 'move', stepId: 'id-1', stepKey: 'one', status: 'manual' },
    });
    expect(splitPostback({ tracker: { utm: 'x' } })).toEqual({ values: { tracker: { utm: 'x' } }, move: undefined });
  });
});

describe('applyDialogUpdates', () => {
  it("creates an absent dialog with the batch's values, journals its move, and hands back what a drain would read first", async () => {
    const chatId = nextChat++;
    const [first, second] = orders(2) as [number, number];
    const applied = await applyDialogUpdates(db, [
      fields(chatId, first, { plan: 'free' }),
      { botId, chatId, seq: second, input: { kind: 'move', stepKey: 'welcome' } },
    ]);
    expect(applied).toHaveLength(1);
    expect(applied[0]).toMatchObject({ botId, chatId, journaled: true });
    expect(applied[0]!.snapshot!.dialog.state.fields).toEqual({ plan: 'free' });
    expect(applied[0]!.snapshot!.inputs).toMatchObject([
      { seq: second, state: 'pending', input: { kind: 'move', stepKey: 'welcome' } },
    ]);
    const row = await dialogRow(chatId);
    expect(row).toMatchObject({ status: 'auto', fields: { plan: 'free' }, seqs: { 'f:plan': first } });
    expect(Number(row.last_seq)).toBe(first);
    expect(await journal(chatId)).toMatchObject([{ seq: second, kind: 'move', state: 'pending' }]);
  });

  it('the newest write of each key wins, whatever order the batches and their updates come in', async () => {
    const chatId = nextChat++;
    const [older, middle, newest] = orders(3) as [number, number, number];
    await applyDialogUpdates(db, [
      fields(chatId, newest, { a: 'newest' }),
      fields(chatId, older, { a: 'older', b: 'older' }),
    ]);
    await applyDialogUpdates(db, [fields(chatId, middle, { a: 'middle', b: 'middle' })]);
    const row = await dialogRow(chatId);
    expect(row.fields).toEqual({ a: 'newest', b: 'middle' });
    expect(row.seqs).toMatchObject({ 'f:a': newest, 'f:b': middle });
    expect(Number(row.last_seq)).toBe(newest);
  });

  it('an update applied twice changes nothing the second time: no new version, no second input', async () => {
    const chatId = nextChat++;
    const [seq, moveSeq] = orders(2) as [number, number];
    const batch: DialogUpdateInput[] = [
      fields(chatId, seq, { a: 'x' }),
      { botId, chatId, seq: moveSeq, input: { kind: 'move', stepKey: 's' } },
    ];
    await applyDialogUpdates(db, batch);
    const before = await dialogRow(chatId);
    const again = await applyDialogUpdates(db, batch);
    expect(again).toMatchObject([{ botId, chatId, journaled: true }]);
    expect(await dialogRow(chatId)).toEqual(before);
    expect(await journal(chatId)).toHaveLength(1);
  });

  it('writes over the version it read: concurrent batches of one dialog each land, none lost', async () => {
    const chatId = nextChat++;
    const seqs = orders(12);
    await Promise.all(seqs.map((seq, i) => applyDialogUpdates(db, [fields(chatId, seq, { [`k${i}`]: `v${i}` })])));
    const row = await dialogRow(chatId);
    expect(row.fields).toEqual(Object.fromEntries(seqs.map((_, i) => [`k${i}`, `v${i}`])));
    expect(Number(row.last_seq)).toBe(Math.max(...seqs));
    expect(Number(row.version), 'one version per write after the one that created it').toBe(seqs.length - 1);
  });

  it('a repeat within one batch (the same Telegram update twice) is one input, at its later order', async () => {
    const chatId = nextChat++;
    const [first, repeat] = orders(2) as [number, number];
    const update = { kind: 'telegram' as const, update: { update_id: 1 }, tokenKey: 'k' };
    const dedupeKey = `tg:k:${chatId}:1`;
    const applied = await applyDialogUpdates(db, [
      { botId, chatId, seq: first, input: update, dedupeKey },
      { botId, chatId, seq: repeat, input: update, dedupeKey },
    ]);
    expect(applied[0]!.snapshot!.inputs.map((i) => i.seq)).toEqual([repeat]);
    expect(await journal(chatId)).toMatchObject([{ seq: repeat, dedupe_key: dedupeKey }]);
  });

  it('hands back no snapshot when the dialog already had an input open (a drain must read it all)', async () => {
    const chatId = nextChat++;
    const [first, second] = orders(2) as [number, number];
    const opened = await applyDialogUpdates(db, [{ botId, chatId, seq: first, input: { kind: 'move', stepKey: 'a' } }]);
    expect(opened[0]!.snapshot).toBeDefined();
    const next = await applyDialogUpdates(db, [{ botId, chatId, seq: second, input: { kind: 'move', stepKey: 'b' } }]);
    expect(next).toEqual([{ botId, chatId, journaled: true }]);
    expect((await journal(chatId)).map((r) => Number(r.seq))).toEqual([first, second]);
  });

  it('writes many dialogs in one batch, each with its own updates', async () => {
    const chats = [nextChat++, nextChat++, nextChat++];
    const seqs = orders(3);
    const applied = await applyDialogUpdates(
      db,
      chats.map((chatId, i) => fields(chatId, seqs[i]!, { who: `chat ${chatId}` })),
    );
    expect(applied.map((a) => a.chatId).sort()).toEqual([...chats].sort());
    for (const chatId of chats) expect((await dialogRow(chatId)).fields).toEqual({ who: `chat ${chatId}` });
  });

  it('a status set back to auto clears the reason flowpost set the dialog manual for', async () => {
    const chatId = nextChat++;
    const [created, resumed] = orders(2) as [number, number];
    await applyDialogUpdates(db, [{ botId, chatId, seq: created, patch: { status: 'manual' } }]);
    await db('dialogs').where({ bot_id: botId, chat_id: chatId }).update({ manual_reason: 'step gone' });
    await applyDialogUpdates(db, [{ botId, chatId, seq: resumed, patch: { status: 'auto' } }]);
    expect(await dialogRow(chatId)).toMatchObject({ status: 'auto', manual_reason: null });
  });

  it('drops the updates of a bot that does not exist, creating nothing', async () => {
    const ghost = randomUUID();
    const [seq] = orders(1) as [number];
    expect(
      await applyDialogUpdates(db, [
        { botId: ghost, chatId: 1, seq, patch: { fields: { a: 'x' } }, input: { kind: 'move', stepKey: 'a' } },
      ]),
    ).toEqual([]);
    expect(await db('dialogs').where({ bot_id: ghost })).toEqual([]);
    expect(await db('dialog_inputs').where({ bot_id: ghost })).toEqual([]);
  });
});
