import type { Knex } from 'knex';
import type { DialogPatch, DialogState } from '../domain/dialog.js';
import { mergeUpdates, type SequencedPatch } from '../domain/dialog-merge.js';
import type { DialogInput } from '../domain/inputs/types.js';
import { journalInputs, toRecord, type DialogRecord, type NewInput, type OpenInput, type RecordRow } from './dialog-inputs.js';
import { rowState, type DialogStateRow } from './dialog-rows.js';

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
  state: DialogState;
  started: boolean;
  /** Inputs were journaled for this dialog: its inbox must be drained. */
  journaled: boolean;
  /**
   * The dialog as this batch left it and the inputs it journaled, when no other input was open:
   * what a drain would read first (a drain that finds it stale reads again).
   */
  snapshot?: { dialog: DialogRecord; inputs: OpenInput[] };
}

/**
 * Splits a postback's patch: values merged at once (fields, tracker, tags) and the move (step,
 * status) that goes through the dialog's order with every other input.
 */
export function splitPostback(patch: DialogPatch): { values: DialogPatch; move: DialogInput | undefined } {
  const { stepId, stepKey, status, ...values } = patch;
  if (stepId === undefined && status === undefined) return { values, move: undefined };
  const move: DialogInput = { kind: 'move' };
  if (stepId !== undefined && stepId !== null) move.stepId = stepId;
  if (stepKey !== undefined) move.stepKey = stepKey;
  if (status !== undefined) move.status = status;
  return { values, move };
}

interface DialogRow extends DialogStateRow, RecordRow {
  bot_id: string;
  chat_id: number;
  started_at: Date | null;
  has_open: boolean;
}

const SELECT_FOR_UPDATE = `
  SELECT d.bot_id, d.chat_id, d.status, d.step_id, d.fields, d.tracker, d.tags, d.seqs, d.last_seq, d.started_at,
    d.username, d.name, d.timer, d.version,
    EXISTS (SELECT 1 FROM dialog_inputs i WHERE i.bot_id = d.bot_id AND i.chat_id = d.chat_id AND i.state IN ('pending', 'acting')) AS has_open
  FROM dialogs d
  JOIN unnest(?::uuid[], ?::bigint[]) AS k(bot_id, chat_id) ON d.bot_id = k.bot_id AND d.chat_id = k.chat_id
  ORDER BY d.bot_id, d.chat_id
  FOR UPDATE OF d`;

// Creates absent dialogs (values can be set before the user starts the bot); skips bots deleted meanwhile.
const INSERT_ABSENT = `
  INSERT INTO dialogs (bot_id, chat_id)
  SELECT k.bot_id, k.chat_id FROM unnest(?::uuid[], ?::bigint[]) AS k(bot_id, chat_id)
  JOIN bots b ON b.id = k.bot_id
  ORDER BY k.bot_id, k.chat_id
  ON CONFLICT DO NOTHING`;

const UPDATE_FROM_JSON = `
  UPDATE dialogs d SET status = v.status, step_id = v.step_id, fields = v.fields, tracker = v.tracker,
    tags = v.tags, seqs = v.seqs, last_seq = v.last_seq, version = d.version + 1, updated_at = now()
  FROM jsonb_to_recordset(?::jsonb) AS v(bot_id uuid, chat_id bigint, status text, step_id uuid,
    fields jsonb, tracker jsonb, tags text[], seqs jsonb, last_seq bigint)
  WHERE d.bot_id = v.bot_id AND d.chat_id = v.chat_id`;

const DEADLOCK = '40P01';
const SERIALIZATION = '40001';

function dialogKey(botId: string, chatId: number): string {
  return `${botId}/${chatId}`;
}

async function lockDialogs(trx: Knex.Transaction, keys: Array<{ botId: string; chatId: number }>): Promise<DialogRow[]> {
  const result = await trx.raw<{ rows: DialogRow[] }>(SELECT_FOR_UPDATE, [keys.map((k) => k.botId), keys.map((k) => k.chatId)]);
  return result.rows;
}

async function applyInTransaction(trx: Knex.Transaction, updates: readonly DialogUpdateInput[]): Promise<AppliedDialog[]> {
  const groups = new Map<string, { botId: string; chatId: number; patches: SequencedPatch[]; inputs: OpenInput[] }>();
  const inputs: NewInput[] = [];
  for (const update of updates) {
    const key = dialogKey(update.botId, update.chatId);
    let group = groups.get(key);
    if (!group) groups.set(key, (group = { botId: update.botId, chatId: update.chatId, patches: [], inputs: [] }));
    if (update.patch) group.patches.push({ seq: update.seq, patch: update.patch });
    if (update.input) {
      group.inputs.push({ seq: update.seq, input: update.input, state: 'pending', effects: null, effectsDone: 0, attempts: 0 });
      inputs.push({ botId: update.botId, chatId: update.chatId, seq: update.seq, input: update.input, dedupeKey: update.dedupeKey ?? null });
    }
  }
  const keys = [...groups.values()].sort((a, b) => (a.botId === b.botId ? a.chatId - b.chatId : a.botId < b.botId ? -1 : 1));

  const rows = await lockDialogs(trx, keys);
  if (rows.length < keys.length) {
    const found = new Set(rows.map((row) => dialogKey(row.bot_id, row.chat_id)));
    const missing = keys.filter((k) => !found.has(dialogKey(k.botId, k.chatId)));
    await trx.raw(INSERT_ABSENT, [missing.map((k) => k.botId), missing.map((k) => k.chatId)]);
    rows.push(...(await lockDialogs(trx, missing)));
  }

  const applied: AppliedDialog[] = [];
  const changedRows: object[] = [];
  for (const row of rows) {
    const group = groups.get(dialogKey(row.bot_id, row.chat_id))!;
    group.patches.sort((a, b) => a.seq - b.seq);
    const merged = mergeUpdates(rowState(row), group.patches);
    const journaled = group.inputs.length > 0;
    const after: DialogRow = { ...row, ...(merged.changed ? { version: Number(row.version) + 1 } : {}) };
    applied.push({
      botId: row.bot_id,
      chatId: row.chat_id,
      state: merged.state,
      started: row.started_at !== null,
      journaled,
      ...(journaled && !row.has_open
        ? { snapshot: { dialog: { ...toRecord(after), state: merged.state }, inputs: group.inputs.sort((a, b) => a.seq - b.seq) } }
        : {}),
    });
    if (merged.changed) {
      const s = merged.state;
      changedRows.push({
        bot_id: row.bot_id,
        chat_id: row.chat_id,
        status: s.status,
        step_id: s.stepId,
        fields: s.fields,
        tracker: s.tracker,
        tags: s.tags,
        seqs: s.seqs,
        last_seq: s.lastSeq,
      });
    }
  }
  if (changedRows.length > 0) await trx.raw(UPDATE_FROM_JSON, [JSON.stringify(changedRows)]);
  await journalInputs(trx, inputs);
  return applied;
}

/**
 * Applies a batch of accepted updates in one transaction: absent dialogs are created, each dialog is
 * locked, merged (newest write per key wins) and written back in one statement; inputs that move the
 * script are journaled in the same transaction. Updates of a bot deleted meanwhile are dropped. Idempotent: an update applied twice changes nothing the second time.
 */
export async function applyDialogUpdates(db: Knex, updates: readonly DialogUpdateInput[]): Promise<AppliedDialog[]> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await db.transaction((trx) => applyInTransaction(trx, updates));
    } catch (error) {
      const code = (error as { code?: string }).code;
      if ((code === DEADLOCK || code === SERIALIZATION) && attempt < 5) continue;
      throw error;
    }
  }
}
