import type { Knex } from 'knex';
import type { DialogPatch } from '../domain/dialog.js';
import { droppedAny, mergeUpdates, type DroppedKeys, type SequencedPatch } from '../domain/dialog-merge.js';
import type { DialogInput } from '../domain/inputs/types.js';
import { JOURNAL_ON_CONFLICT, journalRows, type NewInput, type OpenInput } from './dialog-inputs.js';
import { dialogKey, dialogRowColumns, rowState, toRecord, type DialogRecord, type DialogRow } from './dialog-rows.js';
import { retryingDeadlocks } from './deadlock-retry.js';
import { runNamed, type NamedStatement } from './named-statement.js';

/** An accepted update: a postback's patch and/or an input for the dialog's journal. */
export interface DialogUpdateInput {
  botId: string;
  chatId: number;
  seq: number;
  /** Fields, tracker fields and tags: merged at once, newest per key. */
  patch?: DialogPatch;
  /** What moves the script (a step move, a status, a Telegram update): journaled, handled in order. */
  input?: DialogInput;
  dedupeKey?: string | null;
}

export interface AppliedDialog {
  botId: string;
  chatId: number;
  /** Inputs were journaled for this dialog: it must be drained. */
  journaled: boolean;
  /**
   * The dialog as this batch left it and the inputs it journaled, when no other input was open:
   * what a drain would read first (a drain that finds it stale reads again).
   */
  snapshot?: { dialog: DialogRecord; inputs: OpenInput[] };
  /** New keys the batch could not add: the dialog holds as many of their kind as it may. */
  dropped?: DroppedKeys;
}

/**
 * Splits a postback's patch: values merged at once, newest per key (fields, tracker, tags, the
 * status: `manual` stops automation at once), and the step move, which goes through the dialog's
 * one order with every other input (it carries the status, so its run sees the status it came with).
 */
export function splitPostback(patch: DialogPatch): { values: DialogPatch; move: DialogInput | undefined } {
  const { stepId, stepKey, ...values } = patch;
  if (stepId === undefined || stepId === null) return { values, move: undefined };
  const move: DialogInput = { kind: 'move', stepId };
  if (stepKey !== undefined) move.stepKey = stepKey;
  if (patch.status !== undefined) move.status = patch.status;
  return { values, move };
}

/** A dialog of the batch as READ returns it. */
interface BatchRow extends DialogRow {
  bot_id: string;
  chat_id: number;
  has_open: boolean;
}

// Reads the batch's dialogs that exist, and whether each has inputs still open.
const READ: NamedStatement = {
  name: 'flowpost_read_dialogs_v1',
  text: `
  SELECT d.bot_id, d.chat_id, ${dialogRowColumns('d')},
    EXISTS (SELECT 1 FROM dialog_inputs i WHERE i.bot_id = d.bot_id AND i.chat_id = d.chat_id AND i.state IN ('pending', 'acting')) AS has_open
  FROM dialogs d JOIN unnest($1::uuid[], $2::bigint[]) AS k(bot_id, chat_id) ON d.bot_id = k.bot_id AND d.chat_id = k.chat_id`,
};

// Writes the merged dialogs, each only if no other write came in since it was read (`version`);
// creates the absent ones with their values (not for a bot deleted meanwhile; one another writer
// creates at the same moment is left to a second look); journals the batch's inputs. Returns the
// dialogs written and created.
const WRITE: NamedStatement = {
  name: 'flowpost_write_dialogs_v1',
  text: `
  WITH v AS (
    SELECT * FROM jsonb_to_recordset($1::jsonb) AS v(bot_id uuid, chat_id bigint, version bigint, status text, step_id uuid,
      fields jsonb, tracker jsonb, tags text[], seqs jsonb, last_seq bigint, clear_reason boolean)
  ), n AS (
    SELECT * FROM jsonb_to_recordset($2::jsonb) AS n(bot_id uuid, chat_id bigint, status text, step_id uuid,
      fields jsonb, tracker jsonb, tags text[], seqs jsonb, last_seq bigint)
  ), written AS (
    UPDATE dialogs d SET status = v.status, step_id = v.step_id, fields = v.fields, tracker = v.tracker,
      tags = v.tags, seqs = v.seqs, last_seq = v.last_seq, version = d.version + 1, updated_at = now(),
      manual_reason = CASE WHEN v.clear_reason THEN NULL ELSE d.manual_reason END
    FROM v
    WHERE d.bot_id = v.bot_id AND d.chat_id = v.chat_id AND d.version = v.version
    RETURNING d.bot_id, d.chat_id
  ), created AS (
    INSERT INTO dialogs (bot_id, chat_id, status, step_id, fields, tracker, tags, seqs, last_seq)
    SELECT n.bot_id, n.chat_id, n.status, n.step_id, n.fields, n.tracker, n.tags, n.seqs, n.last_seq
    FROM n JOIN bots b ON b.id = n.bot_id
    ORDER BY n.bot_id, n.chat_id
    ON CONFLICT DO NOTHING
    RETURNING bot_id, chat_id
  ), j AS (
    SELECT * FROM jsonb_to_recordset($3::jsonb) AS j(b uuid, c bigint, s bigint, k text, p jsonb, d text)
  ), journaled AS (
    INSERT INTO dialog_inputs (bot_id, chat_id, seq, kind, payload, dedupe_key)
    SELECT j.b, j.c, j.s, j.k, j.p, j.d FROM j
    JOIN (SELECT bot_id, chat_id FROM dialogs UNION ALL SELECT bot_id, chat_id FROM created) x ON x.bot_id = j.b AND x.chat_id = j.c
    ORDER BY j.s
    ${JOURNAL_ON_CONFLICT}
  )
  SELECT bot_id, chat_id FROM written UNION ALL SELECT bot_id, chat_id FROM created`,
};

const MAX_ROUNDS = 20;

interface Group {
  botId: string;
  chatId: number;
  patches: SequencedPatch[];
  inputs: OpenInput[];
}

function groupUpdates(updates: readonly DialogUpdateInput[]): { groups: Map<string, Group>; inputs: NewInput[] } {
  const groups = new Map<string, Group>();
  const inputs: NewInput[] = [];
  for (const update of updates) {
    const key = dialogKey(update.botId, update.chatId);
    let group = groups.get(key);
    if (!group) groups.set(key, (group = { botId: update.botId, chatId: update.chatId, patches: [], inputs: [] }));
    if (update.patch) group.patches.push({ seq: update.seq, patch: update.patch });
    if (update.input) {
      group.inputs.push({
        seq: update.seq,
        input: update.input,
        state: 'pending',
        effects: null,
        effectsDone: 0,
        attempts: 0,
      });
      inputs.push({
        botId: update.botId,
        chatId: update.chatId,
        seq: update.seq,
        input: update.input,
        dedupeKey: update.dedupeKey ?? null,
      });
    }
  }
  // A repeat within the batch (the same Telegram update delivered twice) is one input, at its later order.
  const byKey = new Map<string, NewInput>();
  for (const input of inputs) {
    const key = `${input.botId}/${input.dedupeKey ?? `seq:${input.seq}`}`;
    const known = byKey.get(key);
    if (!known || known.seq < input.seq) byKey.set(key, input);
  }
  const kept = [...byKey.values()];
  const keptSeqs = new Set(kept.map((input) => input.seq));
  for (const group of groups.values()) {
    group.patches.sort((a, b) => a.seq - b.seq);
    group.inputs = group.inputs.filter((input) => keptSeqs.has(input.seq)).sort((a, b) => a.seq - b.seq);
  }
  return { groups, inputs: kept };
}

async function readExisting(db: Knex, groups: Group[]): Promise<BatchRow[]> {
  return runNamed<BatchRow>(db, READ, [groups.map((g) => g.botId), groups.map((g) => g.chatId)]);
}

/** A dialog as it will be once created by this batch. */
function newRow(group: Group): BatchRow {
  return {
    bot_id: group.botId,
    chat_id: group.chatId,
    status: 'auto',
    step_id: null,
    fields: {},
    tracker: {},
    tags: [],
    seqs: {},
    last_seq: 0,
    started_at: null,
    username: null,
    name: null,
    timer: null,
    version: 0,
    has_open: false,
  };
}

/**
 * Applies a batch of accepted updates: reads the dialogs, merges each (newest write per key wins),
 * and in one statement writes them back, creates the absent ones and journals the inputs that move
 * the script. A dialog written by someone else between the read and the write is read and merged
 * again (no lock is held, so a script run writing the same dialog never waits for a batch, nor a
 * batch for it). Updates of a bot deleted meanwhile are dropped. Idempotent: an update applied twice
 * changes nothing the second time.
 */
export async function applyDialogUpdates(db: Knex, updates: readonly DialogUpdateInput[]): Promise<AppliedDialog[]> {
  const { groups, inputs } = groupUpdates(updates);
  const applied: AppliedDialog[] = [];
  let todo = [...groups.values()];
  const missedBefore = new Set<string>();
  for (let round = 1; todo.length > 0; round++) {
    if (round > MAX_ROUNDS) throw new Error(`dialog updates still contended after ${MAX_ROUNDS} rounds`);
    const existing = await readExisting(db, todo);
    const found = new Set(existing.map((row) => dialogKey(row.bot_id, row.chat_id)));
    const absent = todo.filter((g) => !found.has(dialogKey(g.botId, g.chatId)));
    const merges = [...existing, ...absent.map(newRow)].map((row) => {
      const group = groups.get(dialogKey(row.bot_id, row.chat_id))!;
      return {
        row,
        group,
        isNew: !found.has(dialogKey(row.bot_id, row.chat_id)),
        merged: mergeUpdates(rowState(row), group.patches),
      };
    });
    const values = (m: (typeof merges)[number]) => ({
      bot_id: m.row.bot_id,
      chat_id: m.row.chat_id,
      status: m.merged.state.status,
      step_id: m.merged.state.stepId,
      fields: m.merged.state.fields,
      tracker: m.merged.state.tracker,
      tags: m.merged.state.tags,
      seqs: m.merged.state.seqs,
      last_seq: m.merged.state.lastSeq,
    });
    const updated = merges
      .filter((m) => !m.isNew && m.merged.changed)
      .map((m) => ({
        ...values(m),
        version: m.row.version,
        clear_reason: m.merged.statusChanged && m.merged.state.status !== 'manual',
      }));
    const created = merges.filter((m) => m.isNew).map(values);
    const todoKeys = new Set(todo.map((g) => dialogKey(g.botId, g.chatId)));
    const journal = inputs.filter((i) => todoKeys.has(dialogKey(i.botId, i.chatId)));
    const bindings = [JSON.stringify(updated), JSON.stringify(created), journalRows(journal)];
    const done = await retryingDeadlocks(() => runNamed<{ bot_id: string; chat_id: number }>(db, WRITE, bindings));
    const doneKeys = new Set(done.map((r) => dialogKey(r.bot_id, r.chat_id)));

    const retry: Group[] = [];
    for (const { row, group, isNew, merged } of merges) {
      const key = dialogKey(row.bot_id, row.chat_id);
      if ((isNew || merged.changed) && !doneKeys.has(key)) {
        // Written by someone else since it was read, or created by another writer at this very
        // moment: read it again. A dialog not created twice belongs to a bot that is gone.
        if (isNew && missedBefore.has(key)) continue;
        if (isNew) missedBefore.add(key);
        retry.push(group);
        continue;
      }
      const journaled = group.inputs.length > 0;
      const after: BatchRow = { ...row, ...(merged.changed && !isNew ? { version: Number(row.version) + 1 } : {}) };
      applied.push({
        botId: row.bot_id,
        chatId: row.chat_id,
        journaled,
        ...(droppedAny(merged.dropped) ? { dropped: merged.dropped } : {}),
        ...(journaled && !row.has_open
          ? { snapshot: { dialog: { ...toRecord(after), state: merged.state }, inputs: group.inputs } }
          : {}),
      });
    }
    todo = retry;
  }
  return applied;
}
