/**
 * The journal of dialog inputs (table dialog_inputs): each input kept under its acceptance order,
 * read back oldest first, a repeat journaled once, decisions recorded only against the dialog as
 * read, failures counted until an input is set aside, and what the sweeper looks for.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertBot } from '../../src/db/bots.js';
import { createDb, type Db } from '../../src/db/connection.js';
import {
  DecisionRecorder,
  dialogsWithStaleInputs,
  failInput,
  highestSequence,
  journalInputs,
  listDeadInputs,
  loadOpenInputs,
  overdueTimers,
  reviveDeadInput,
  type NewInput,
} from '../../src/db/dialog-inputs.js';
import { applyDialogUpdates } from '../../src/db/dialog-writer.js';
import type { Decision, DialogInput } from '../../src/domain/inputs/types.js';
import { databaseUrl } from '../support/database.js';

let db: Db;
let botId: string;
let nextChat = 1_000;
// Orders are unique across the whole file, as the one counter the web tier draws from makes them
// (an input without a dedupe key is known by its order within its bot).
let nextOrder = 1_000;
/** `count` new orders, ascending, each 10 apart. */
const orders = (count: number) => Array.from({ length: count }, () => (nextOrder += 10));

beforeAll(async () => {
  db = createDb(databaseUrl());
  botId = (await insertBot(db, { name: 'journal', timezone: 'UTC', telegram: null })).id;
});
afterAll(async () => {
  await db?.destroy();
});

/** A dialog that exists (a postback created it with order `seq`), for a chat of its own. */
async function newDialog(seq = orders(1)[0]!): Promise<number> {
  const chatId = nextChat++;
  await applyDialogUpdates(db, [{ botId, chatId, seq, patch: { fields: { created: 'yes' } } }]);
  return chatId;
}

const move = (stepKey: string): DialogInput => ({ kind: 'move', stepKey });
const input = (
  chatId: number,
  seq: number,
  payload: DialogInput = move(`s${seq}`),
  dedupeKey: string | null = null,
): NewInput => ({
  botId,
  chatId,
  seq,
  input: payload,
  dedupeKey,
});
const rowsOf = (chatId: number) =>
  db('dialog_inputs')
    .where({ bot_id: botId, chat_id: chatId })
    .orderBy('seq')
    .select('seq', 'state', 'dedupe_key', 'attempts');
const recorded = (decision: Partial<Decision> = {}): Decision => ({
  outcome: 'recorded',
  changes: {},
  effects: [],
  log: [],
  ...decision,
});

describe('journaling inputs', () => {
  it('reads the open inputs back oldest first whatever the order they were journaled in, up to the limit', async () => {
    const chatId = await newDialog();
    const [a, b, c] = orders(3) as [number, number, number];
    await journalInputs(db, [input(chatId, c), input(chatId, a)]);
    await journalInputs(db, [input(chatId, b)]);
    const loaded = await loadOpenInputs(db, { botId, chatId });
    expect(loaded!.inputs.map((i) => [i.seq, i.state, i.input])).toEqual([
      [a, 'pending', move(`s${a}`)],
      [b, 'pending', move(`s${b}`)],
      [c, 'pending', move(`s${c}`)],
    ]);
    expect(loaded!.dialog.state.fields).toEqual({ created: 'yes' });
    expect((await loadOpenInputs(db, { botId, chatId }, 2))!.inputs.map((i) => i.seq)).toEqual([a, b]);
  });

  it('journals nothing for a dialog that does not exist, and loads no such dialog', async () => {
    const chatId = nextChat++;
    await journalInputs(db, [input(chatId, orders(1)[0]!)]);
    expect(await rowsOf(chatId)).toEqual([]);
    expect(await loadOpenInputs(db, { botId, chatId })).toBeNull();
  });

  it('a repeat is journaled once; while the first is pending it takes a later order, never an earlier one', async () => {
    const chatId = await newDialog();
    const update: DialogInput = { kind: 'telegram', update: { update_id: 9 }, tokenKey: 'k' };
    const [earlier, first, later] = orders(3) as [number, number, number];
    await journalInputs(db, [input(chatId, first, update, `tg:k:${chatId}:9`)]);
    await journalInputs(db, [input(chatId, earlier, update, `tg:k:${chatId}:9`)]);
    expect((await rowsOf(chatId)).map((r) => r.seq)).toEqual([first]);
    await journalInputs(db, [input(chatId, later, update, `tg:k:${chatId}:9`)]);
    expect((await rowsOf(chatId)).map((r) => r.seq)).toEqual([later]);
  });

  it('a repeat of an input already handled changes nothing', async () => {
    const chatId = await newDialog();
    const [first, repeat] = orders(2) as [number, number];
    await journalInputs(db, [input(chatId, first, move('a'), `repeat:${chatId}`)]);
    const { dialog } = (await loadOpenInputs(db, { botId, chatId }))!;
    expect(
      await new DecisionRecorder(db).record({
        botId,
        chatId,
        dialog,
        seq: first,
        decision: recorded(),
        incomingPayload: null,
      }),
    ).not.toBeNull();
    await journalInputs(db, [input(chatId, repeat, move('a'), `repeat:${chatId}`)]);
    expect(await rowsOf(chatId)).toEqual([{ seq: first, state: 'done', dedupe_key: `repeat:${chatId}`, attempts: 0 }]);
  });

  it('an input without a dedupe key is known by its order: journaled again under it, it stays one input', async () => {
    const chatId = await newDialog();
    const [seq] = orders(1) as [number];
    await journalInputs(db, [input(chatId, seq)]);
    await journalInputs(db, [input(chatId, seq)]);
    expect((await rowsOf(chatId)).map((r) => [r.seq, r.dedupe_key])).toEqual([[seq, `seq:${seq}`]]);
  });
});

describe('recording decisions', () => {
  it("writes the dialog with the input's order and bumps its version; the same decision again finds it changed", async () => {
    const chatId = await newDialog();
    const [seq] = orders(1) as [number];
    await journalInputs(db, [input(chatId, seq)]);
    const { dialog } = (await loadOpenInputs(db, { botId, chatId }))!;
    const recorder = new DecisionRecorder(db);
    const write = {
      botId,
      chatId,
      dialog,
      seq,
      decision: recorded({ changes: { fields: { plan: 'gold' } } }),
      incomingPayload: null,
    };
    const written = await recorder.record(write);
    expect(written!.version).toBe(dialog.version + 1);
    expect(written!.state.fields).toEqual({ created: 'yes', plan: 'gold' });
    expect(written!.state.seqs['f:plan']).toBe(seq);
    expect(written!.state.lastSeq).toBe(seq);
    expect(await recorder.record(write), 'the version read is gone').toBeNull();
  });

  it('records nothing for an input no longer pending, even against the current version', async () => {
    const chatId = await newDialog();
    const [seq] = orders(1) as [number];
    await journalInputs(db, [input(chatId, seq)]);
    const recorder = new DecisionRecorder(db);
    const first = (await loadOpenInputs(db, { botId, chatId }))!.dialog;
    await recorder.record({ botId, chatId, dialog: first, seq, decision: recorded(), incomingPayload: null });
    const current = (await loadOpenInputs(db, { botId, chatId }))!.dialog;
    expect(
      await recorder.record({
        botId,
        chatId,
        dialog: current,
        seq,
        decision: recorded({ changes: { fields: { again: 'x' } } }),
        incomingPayload: null,
      }),
    ).toBeNull();
    expect((await loadOpenInputs(db, { botId, chatId }))!.dialog).toEqual(current);
  });

  it('an input with effects to carry out is left acting with them; one superseded ends superseded', async () => {
    const chatId = await newDialog();
    const [acting, superseded] = orders(2) as [number, number];
    await journalInputs(db, [input(chatId, acting), input(chatId, superseded)]);
    const recorder = new DecisionRecorder(db);
    const effects = [{ type: 'send_message', text: 'hello' }] as Decision['effects'];
    let { dialog } = (await loadOpenInputs(db, { botId, chatId }))!;
    dialog = (await recorder.record({
      botId,
      chatId,
      dialog,
      seq: acting,
      decision: recorded({ outcome: 'ran', effects }),
      incomingPayload: null,
    }))!;
    await recorder.record({
      botId,
      chatId,
      dialog,
      seq: superseded,
      decision: recorded({ outcome: 'superseded' }),
      incomingPayload: null,
    });
    expect((await rowsOf(chatId)).map((r) => [r.seq, r.state])).toEqual([
      [acting, 'acting'],
      [superseded, 'superseded'],
    ]);
    const open = (await loadOpenInputs(db, { botId, chatId }))!.inputs;
    expect(open).toMatchObject([{ seq: acting, state: 'acting', effects, effectsDone: 0 }]);
  });
});

describe('failed inputs', () => {
  it('counts failed tries and sets the input aside as dead at the limit; it is listed, and put back once', async () => {
    const chatId = await newDialog();
    const [seq] = orders(1) as [number];
    await journalInputs(db, [input(chatId, seq)]);
    const ref = { botId, chatId };
    expect(await failInput(db, ref, seq, 'first', 3)).toBe('pending');
    expect(await failInput(db, ref, seq, 'second', 3)).toBe('pending');
    expect(await failInput(db, ref, seq, 'third: 429', 3)).toBe('dead');
    expect((await loadOpenInputs(db, ref))!.inputs).toEqual([]);

    const dead = await listDeadInputs(db, botId, { chatId, limit: 10 });
    expect(dead).toMatchObject([
      { chatId, seq: String(seq), kind: 'move', attempts: 3, error: 'third: 429', effectsDone: 0 },
    ]);

    expect(await reviveDeadInput(db, ref, seq)).toBe(true);
    expect((await loadOpenInputs(db, ref))!.inputs).toMatchObject([{ seq, state: 'pending', attempts: 0 }]);
    expect(await reviveDeadInput(db, ref, seq), 'nothing dead any more').toBe(false);
    expect(await listDeadInputs(db, botId, { chatId, limit: 10 })).toEqual([]);
  });

  it('an input that died with effects recorded comes back acting, to resume them', async () => {
    const chatId = await newDialog();
    const [seq] = orders(1) as [number];
    await journalInputs(db, [input(chatId, seq)]);
    const { dialog } = (await loadOpenInputs(db, { botId, chatId }))!;
    const effects = [{ type: 'send_message', text: 'hi' }] as Decision['effects'];
    await new DecisionRecorder(db).record({
      botId,
      chatId,
      dialog,
      seq,
      decision: recorded({ outcome: 'ran', effects }),
      incomingPayload: null,
    });
    expect(await failInput(db, { botId, chatId }, seq, 'boom', 1)).toBe('dead');
    expect(await reviveDeadInput(db, { botId, chatId }, seq)).toBe(true);
    expect((await rowsOf(chatId)).map((r) => r.state)).toEqual(['acting']);
  });
});

describe('what the sweeper finds', () => {
  it('finds dialogs whose open inputs were left untouched too long, not the fresh nor the handled ones', async () => {
    const stale = await newDialog();
    const fresh = await newDialog();
    const handled = await newDialog();
    const [a, b, c] = orders(3) as [number, number, number];
    await journalInputs(db, [input(stale, a), input(fresh, b), input(handled, c)]);
    await db('dialog_inputs')
      .where({ bot_id: botId })
      .whereIn('chat_id', [stale, handled])
      .update({ updated_at: db.raw(`now() - interval '1 hour'`) });
    await db('dialog_inputs').where({ bot_id: botId, chat_id: handled }).update({ state: 'done' });
    const found = (await dialogsWithStaleInputs(db, 60_000, 1_000)).filter((d) => d.botId === botId);
    expect(found).toEqual([{ botId, chatId: stale }]);
  });

  it('finds delays due longer ago than the grace, with their timer', async () => {
    const overdue = await newDialog();
    const soon = await newDialog();
    const timer = {
      at: new Date(Date.now() - 3_600_000).toISOString(),
      scheduledBy: 1,
      stepId: null,
      stepKey: 'later',
    };
    await db('dialogs')
      .where({ bot_id: botId, chat_id: overdue })
      .update({ timer_at: timer.at, timer: JSON.stringify(timer) });
    const future = { ...timer, at: new Date(Date.now() + 3_600_000).toISOString() };
    await db('dialogs')
      .where({ bot_id: botId, chat_id: soon })
      .update({ timer_at: future.at, timer: JSON.stringify(future) });
    const found = (await overdueTimers(db, 60_000, 1_000)).filter((d) => d.botId === botId);
    expect(found).toEqual([{ botId, chatId: overdue, timer }]);
  });

  it("the highest order held covers both the dialogs' last orders and the journal", async () => {
    const before = await highestSequence(db);
    const chatId = await newDialog(before + 100);
    expect(await highestSequence(db)).toBe(before + 100);
    await journalInputs(db, [input(chatId, before + 250)]);
    expect(await highestSequence(db)).toBe(before + 250);
  });
});
