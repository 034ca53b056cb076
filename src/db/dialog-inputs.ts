import type { Knex } from 'knex';
import { applyScriptChanges } from '../domain/dialog-merge.js';
import type { DialogState } from '../domain/dialog.js';
import type { Decision, DialogInput, DialogTimer, RecordedEffect } from '../domain/inputs/types.js';
import type { IncomingLine } from './dialog-messages.js';
import { dialogRowColumns, toRecord, type DialogRecord, type DialogRef, type DialogRow } from './dialog-rows.js';
import { GroupCommit } from './group-commit.js';
import { retryingDeadlocks } from './deadlock-retry.js';
import { runNamed, type NamedStatement } from './named-statement.js';

export type InputState = 'pending' | 'acting' | 'done' | 'superseded' | 'dead';

/** A journaled input still to handle (or to finish: `acting` carries its recorded effects). */
export interface OpenInput {
  seq: number;
  input: DialogInput;
  state: 'pending' | 'acting';
  effects: RecordedEffect[] | null;
  effectsDone: number;
  attempts: number;
}

/** An input to journal, from the batch that applied it. */
export interface NewInput extends DialogRef {
  seq: number;
  input: DialogInput;
  dedupeKey: string | null;
}

// Inserts journal rows given as JSON (see `journalRows`), for dialogs that exist. A repeat (same
// dedupe key) is ignored, except that a repeat drawn a later order while the first is still pending
// takes that order: after Redis lost its counter, an input queued again above the restored floor is
// not handled at the low order it was first drawn.
export const JOURNAL_ON_CONFLICT = `
  ON CONFLICT (bot_id, dedupe_key) WHERE dedupe_key IS NOT NULL
  DO UPDATE SET seq = excluded.seq, updated_at = now()
    WHERE dialog_inputs.state = 'pending' AND dialog_inputs.chat_id = excluded.chat_id AND dialog_inputs.seq < excluded.seq`;

const JOURNAL_INSERT = `
  INSERT INTO dialog_inputs (bot_id, chat_id, seq, kind, payload, dedupe_key)
  SELECT v.b, v.c, v.s, v.k, v.p, v.d FROM jsonb_to_recordset(?::jsonb) AS v(b uuid, c bigint, s bigint, k text, p jsonb, d text)
  JOIN dialogs x ON x.bot_id = v.b AND x.chat_id = v.c
  ORDER BY v.s
  ${JOURNAL_ON_CONFLICT}`;

/** The JSON rows of JOURNAL_INSERT. Every input has a dedupe key (a move's is its order), so one arbiter takes every repeat. */
export function journalRows(inputs: readonly NewInput[]): string {
  return JSON.stringify(
    inputs.map((i) => ({
      b: i.botId,
      c: i.chatId,
      s: i.seq,
      k: i.input.kind,
      p: i.input,
      d: i.dedupeKey ?? `seq:${i.seq}`,
    })),
  );
}

/** Journals inputs (see JOURNAL_INSERT). */
export async function journalInputs(db: Knex, inputs: readonly NewInput[]): Promise<void> {
  if (inputs.length === 0) return;
  await db.raw(JOURNAL_INSERT, [journalRows(inputs)]);
}

interface LoadedRow extends DialogRow {
  inputs: Array<{
    seq: string | number;
    payload: DialogInput;
    state: 'pending' | 'acting';
    effects: RecordedEffect[] | null;
    effects_done: number;
    attempts: number;
  }> | null;
}

const LOAD_OPEN_INPUTS: NamedStatement = {
  name: 'flowpost_load_open_inputs_v1',
  text: `
  SELECT ${dialogRowColumns('d')},
    (SELECT json_agg(i ORDER BY i.seq) FROM (
       SELECT seq, payload, state, effects, effects_done, attempts FROM dialog_inputs
       WHERE bot_id = d.bot_id AND chat_id = d.chat_id AND state IN ('pending', 'acting')
       ORDER BY seq LIMIT $1) i) AS inputs
  FROM dialogs d WHERE d.bot_id = $2 AND d.chat_id = $3`,
};

/** The dialog and its open inputs, oldest first (at most `limit`); null when the dialog is gone. */
export async function loadOpenInputs(
  db: Knex,
  ref: DialogRef,
  limit = 20,
): Promise<{ dialog: DialogRecord; inputs: OpenInput[] } | null> {
  const rows = await runNamed<LoadedRow>(db, LOAD_OPEN_INPUTS, [limit, ref.botId, ref.chatId]);
  const row = rows[0];
  if (!row) return null;
  return {
    dialog: toRecord(row),
    inputs: (row.inputs ?? []).map((i) => ({
      seq: Number(i.seq),
      input: i.payload,
      state: i.state,
      effects: i.effects,
      effectsDone: i.effects_done,
      attempts: i.attempts,
    })),
  };
}

/** The dialog's state once a decision is written with the order of its input. */
function stateAfter(current: DialogState, decision: Decision, seq: number): DialogState {
  const state = applyScriptChanges(current, decision.changes, seq);
  if (seq > state.lastSeq) state.lastSeq = seq;
  return state;
}

/** A decision to record: the dialog as it was read, the input, what was decided. */
export interface DecisionWrite extends DialogRef {
  dialog: DialogRecord;
  seq: number;
  decision: Decision;
  /** The Telegram update, kept with the user's line when the decision keeps it (a dialog an operator has). */
  incomingPayload: unknown;
  /** The user's line of the transcript this input carries, recorded with the decision (so once). */
  incoming?: IncomingLine | null;
}

// One statement records many decisions (of different dialogs): each dialog's new state, written
// only if no other write came in since it was read (`version`) and its input is still pending; the
// input's recorded effects (state `acting`, or `done`/`superseded` when there is nothing to carry
// out); the user's line of the transcript. Returns the dialogs written.
const RECORD_DECISIONS: NamedStatement = {
  name: 'flowpost_record_decisions_v2',
  text: `
  WITH v AS MATERIALIZED (
    SELECT * FROM jsonb_to_recordset($1::jsonb) AS v(b uuid, c bigint, s bigint, ver bigint, status text, step_id uuid,
      fields jsonb, tracker jsonb, tags text[], seqs jsonb, last_seq bigint, st boolean, un text, nm text, fn text, ln text,
      ts boolean, ta timestamptz, tm jsonb, rs boolean, rr text, istate text, eff jsonb, note text, inc boolean, itext text, ipay jsonb, imid bigint)
  ), lk AS (
    -- The inputs still pending, locked until this statement commits: a repeat journaled meanwhile
    -- cannot move an input's order under its decision.
    SELECT p.bot_id, p.chat_id, p.seq FROM dialog_inputs p JOIN v ON p.bot_id = v.b AND p.chat_id = v.c AND p.seq = v.s
    WHERE p.state = 'pending'
    FOR UPDATE OF p
  ), d AS (
    UPDATE dialogs x SET status = v.status, step_id = v.step_id, fields = v.fields, tracker = v.tracker, tags = v.tags,
      seqs = v.seqs, last_seq = v.last_seq, version = x.version + 1, updated_at = now(),
      username = CASE WHEN v.st THEN v.un ELSE x.username END,
      name = CASE WHEN v.st THEN v.nm ELSE x.name END,
      first_name = CASE WHEN v.st THEN v.fn ELSE x.first_name END,
      last_name = CASE WHEN v.st THEN v.ln ELSE x.last_name END,
      started_at = CASE WHEN v.st THEN coalesce(x.started_at, now()) ELSE x.started_at END,
      timer_at = CASE WHEN v.ts THEN v.ta ELSE x.timer_at END,
      timer = CASE WHEN v.ts THEN v.tm ELSE x.timer END,
      manual_reason = CASE WHEN v.rs THEN v.rr ELSE x.manual_reason END
    FROM v JOIN lk ON lk.bot_id = v.b AND lk.chat_id = v.c AND lk.seq = v.s
    WHERE x.bot_id = v.b AND x.chat_id = v.c AND x.version = v.ver
    RETURNING x.bot_id, x.chat_id, v.s AS input_seq, ${dialogRowColumns('x')}
  ), i AS (
    UPDATE dialog_inputs p SET state = v.istate, effects = v.eff, note = v.note, updated_at = now()
    FROM v JOIN d ON d.bot_id = v.b AND d.chat_id = v.c AND d.input_seq = v.s
    WHERE p.bot_id = v.b AND p.chat_id = v.c AND p.seq = v.s AND p.state = 'pending'
  ), m AS (
    INSERT INTO dialog_messages (bot_id, chat_id, direction, sender, text, payload, telegram_message_id)
    SELECT v.b, v.c, 'in', 'user', v.itext, v.ipay, v.imid FROM v JOIN d ON d.bot_id = v.b AND d.chat_id = v.c AND d.input_seq = v.s WHERE v.inc
  )
  SELECT * FROM d`,
};

function decisionRow(write: DecisionWrite): object {
  const { decision, seq } = write;
  const state = stateAfter(write.dialog.state, decision, decision.order ?? seq);
  const acting = decision.effects.length > 0;
  const inputState: InputState = acting ? 'acting' : decision.outcome === 'superseded' ? 'superseded' : 'done';
  const started = decision.started;
  const line = write.incoming ?? (decision.incoming ? { text: decision.incoming.text, telegramMessageId: null } : null);
  return {
    b: write.botId,
    c: write.chatId,
    s: seq,
    ver: write.dialog.version,
    status: state.status,
    step_id: state.stepId,
    fields: state.fields,
    tracker: state.tracker,
    tags: state.tags,
    seqs: state.seqs,
    last_seq: state.lastSeq,
    st: started !== undefined,
    un: started?.username ?? null,
    nm: started?.name ?? null,
    fn: started?.firstName ?? null,
    ln: started?.lastName ?? null,
    ts: decision.timer !== undefined,
    ta: decision.timer?.at ?? null,
    tm: decision.timer ?? null,
    rs: decision.manualReason !== undefined,
    rr: decision.manualReason ?? null,
    istate: inputState,
    eff: acting ? decision.effects : null,
    note: decision.log.length > 0 ? decision.log.join('; ').slice(0, 2_000) : null,
    inc: line !== null,
    itext: line?.text ?? null,
    ipay: decision.incoming !== undefined ? (write.incomingPayload ?? null) : null,
    imid: line?.telegramMessageId ?? null,
  };
}

/**
 * Records decisions, many dialogs' in one statement: while one statement is in flight the next
 * decisions gather (group commit). Each resolves to the dialog as written, or null when the
 * dialog changed since it was read or the input is no longer pending (read again, decide again).
 */
export class DecisionRecorder {
  private readonly group: GroupCommit<DecisionWrite, DialogRecord | null>;

  constructor(private readonly db: Knex) {
    this.group = new GroupCommit((writes) => this.write(writes), 500);
  }

  record(write: DecisionWrite): Promise<DialogRecord | null> {
    return this.group.submit(write);
  }

  private async write(writes: DecisionWrite[]): Promise<Array<DialogRecord | null>> {
    type Row = DialogRow & { bot_id: string; chat_id: string | number; input_seq: string | number };
    // A deadlock: a batch journaling a repeat of one of these inputs at the same moment.
    const rows = await retryingDeadlocks(() =>
      runNamed<Row>(this.db, RECORD_DECISIONS, [JSON.stringify(writes.map(decisionRow))]),
    );
    const written = new Map(rows.map((row) => [`${row.bot_id}/${row.chat_id}/${row.input_seq}`, toRecord(row)]));
    return writes.map((w) => written.get(`${w.botId}/${w.chatId}/${w.seq}`) ?? null);
  }
}

/** Telegram says the user blocked the bot while the input's run was sending: the dialog is blocked, the rest is not sent. */
export async function blockDialog(db: Knex, ref: DialogRef, seq: number): Promise<void> {
  await db.raw(
    `UPDATE dialogs SET status = 'blocked', seqs = jsonb_set(seqs, '{status}', to_jsonb(?::bigint)), version = version + 1, updated_at = now()
     WHERE bot_id = ? AND chat_id = ? AND coalesce((seqs->>'status')::bigint, 0) <= ?`,
    [seq, ref.botId, ref.chatId, seq],
  );
}

/**
 * Counts a failed try of an input; after `maxAttempts` it is set aside as `dead` (the dialog goes
 * on with its next input). Returns the input's state after the failure.
 */
export async function failInput(
  db: Knex,
  ref: DialogRef,
  seq: number,
  error: string,
  maxAttempts: number,
): Promise<InputState> {
  const result = await db.raw<{ rows: Array<{ state: InputState }> }>(
    `UPDATE dialog_inputs SET attempts = attempts + 1, last_error = ?, updated_at = now(),
       state = CASE WHEN attempts + 1 >= ? THEN 'dead' ELSE state END
     WHERE bot_id = ? AND chat_id = ? AND seq = ? RETURNING state`,
    [error.slice(0, 2_000), maxAttempts, ref.botId, ref.chatId, seq],
  );
  return result.rows[0]?.state ?? 'dead';
}

/** An input set aside, as the management API shows it. */
export interface DeadInputView {
  chatId: number;
  seq: string;
  kind: string;
  input: DialogInput;
  attempts: number;
  error: string | null;
  effectsDone: number;
  createdAt: string;
  failedAt: string;
}

/** The columns listDeadInputs reads. */
interface DeadInputRow {
  chat_id: number;
  seq: number;
  kind: string;
  payload: DialogInput;
  attempts: number;
  last_error: string | null;
  effects_done: number;
  created_at: Date;
  updated_at: Date;
}

export async function listDeadInputs(
  db: Knex,
  botId: string,
  options: { chatId?: number; limit: number },
): Promise<DeadInputView[]> {
  const query = db('dialog_inputs')
    .where({ bot_id: botId, state: 'dead' })
    .orderBy('updated_at', 'desc')
    .limit(options.limit)
    .select<DeadInputRow[]>(
      'chat_id',
      'seq',
      'kind',
      'payload',
      'attempts',
      'last_error',
      'effects_done',
      'created_at',
      'updated_at',
    );
  if (options.chatId !== undefined) void query.andWhere({ chat_id: options.chatId });
  const rows = await query;
  return rows.map((row) => ({
    chatId: Number(row.chat_id),
    seq: String(row.seq),
    kind: row.kind,
    input: row.payload,
    attempts: row.attempts,
    error: row.last_error,
    effectsDone: row.effects_done,
    createdAt: row.created_at.toISOString(),
    failedAt: row.updated_at.toISOString(),
  }));
}

/** Puts a dead input back to be handled (resuming its recorded effects, if any); false when there is none. */
export async function reviveDeadInput(db: Knex, ref: DialogRef, seq: number): Promise<boolean> {
  const count = await db('dialog_inputs')
    .where({ bot_id: ref.botId, chat_id: ref.chatId, seq, state: 'dead' })
    .update({
      state: db.raw(`CASE WHEN effects IS NULL THEN 'pending' ELSE 'acting' END`),
      attempts: 0,
      updated_at: db.fn.now(),
    });
  return count > 0;
}

/** Dialogs with inputs left open longer than `staleMs` (their drain was lost: a crash, a Redis loss). */
export async function dialogsWithStaleInputs(db: Knex, staleMs: number, limit: number): Promise<DialogRef[]> {
  const result = await db.raw<{ rows: Array<{ bot_id: string; chat_id: string | number }> }>(
    `SELECT DISTINCT bot_id, chat_id FROM (
       SELECT bot_id, chat_id FROM dialog_inputs
       WHERE state IN ('pending', 'acting') AND updated_at < now() - make_interval(secs => ?)
       ORDER BY updated_at LIMIT ?) s`,
    [staleMs / 1000, limit],
  );
  return result.rows.map((r) => ({ botId: r.bot_id, chatId: Number(r.chat_id) }));
}

/** Pending delays due longer than `graceMs` ago (their alarm was lost). */
export async function overdueTimers(
  db: Knex,
  graceMs: number,
  limit: number,
): Promise<Array<DialogRef & { timer: DialogTimer }>> {
  const result = await db.raw<{ rows: Array<{ bot_id: string; chat_id: string | number; timer: DialogTimer }> }>(
    `SELECT bot_id, chat_id, timer FROM dialogs WHERE timer_at < now() - make_interval(secs => ?) ORDER BY timer_at LIMIT ?`,
    [graceMs / 1000, limit],
  );
  return result.rows
    .filter((r) => r.timer)
    .map((r) => ({ botId: r.bot_id, chatId: Number(r.chat_id), timer: r.timer }));
}

/** The highest acceptance order Postgres holds: the order counter must restart above it. */
export async function highestSequence(db: Knex): Promise<number> {
  const result = await db.raw<{ rows: Array<{ max: string | null }> }>(
    `SELECT greatest(
       (SELECT max(last_seq) FROM dialogs),
       (SELECT max(seq) FROM dialog_inputs),
       (SELECT max(seq) FROM click_waiting_updates)
     ) AS max`,
  );
  return Number(result.rows[0]?.max ?? 0);
}
