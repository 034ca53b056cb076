import type { Knex } from 'knex';
import type { DialogPatch, DialogState } from '../domain/dialog.js';
import { applyScriptChanges } from '../domain/dialog-merge.js';
import type { EngineScript } from '../domain/engine/index.js';
import type { Step } from '../domain/script/index.js';
import { rowState, type DialogStateRow } from './dialog-rows.js';

/** A dialog as the script runner needs it. */
export interface DialogRecord {
  state: DialogState;
  username: string | null;
  name: string | null;
  createdAt: Date;
  startedAt: Date | null;
  runVersion: number;
  lastUpdateId: number;
}

interface DialogRow extends DialogStateRow {
  username: string | null;
  name: string | null;
  created_at: Date;
  started_at: Date | null;
  run_version: number;
  last_update_id: number;
}

function toRecord(row: DialogRow): DialogRecord {
  return {
    state: rowState(row),
    username: row.username,
    name: row.name,
    createdAt: row.created_at,
    startedAt: row.started_at,
    runVersion: row.run_version,
    lastUpdateId: row.last_update_id,
  };
}

const COLUMNS = [
  'status',
  'step_id',
  'fields',
  'tracker',
  'tags',
  'seqs',
  'last_seq',
  'username',
  'name',
  'created_at',
  'started_at',
  'run_version',
  'last_update_id',
];

export async function findDialogRecord(db: Knex, botId: string, chatId: number): Promise<DialogRecord | null> {
  const row = await db('dialogs').where({ bot_id: botId, chat_id: chatId }).first(COLUMNS);
  return row ? toRecord(row as DialogRow) : null;
}

export async function loadScript(db: Knex, botId: string): Promise<EngineScript | null> {
  const [bot, steps] = await Promise.all([
    db('bots').where({ id: botId }).first('script_start'),
    db('script_steps').where({ bot_id: botId }).orderBy('position').select('id', 'definition'),
  ]);
  if (!bot?.script_start) return null;
  return {
    startKey: bot.script_start,
    steps: steps.map((row: { id: string; definition: Step }) => ({ id: row.id, step: row.definition })),
  };
}

/** What one handled event changes on a dialog besides the script's own changes. */
export interface RunRecord {
  /** The script's changes (step, status, fields, tags). */
  changes: DialogPatch;
  /** Set when the script ran: a delayed continuation of an older run becomes stale. */
  runVersion?: number;
  /** The Telegram update handled, so that a redelivery is skipped. */
  lastUpdateId?: number;
  /** From /start: the user and the dialog's start. */
  started?: { username: string | null; name: string | null; firstName: string | null; lastName: string | null };
  /** The newest applied update the run saw; keys newer postbacks wrote meanwhile are kept. */
  baseSeq?: number;
  /** Extra bookkeeping slots in `seqs` (e.g. which postback's step move has run). */
  marks?: Record<string, number>;
}

/** Writes a handled event onto the dialog as it is now (creating it if absent), in one transaction. */
export async function saveRun(db: Knex, botId: string, chatId: number, run: RunRecord): Promise<DialogRecord> {
  return db.transaction(async (trx) => {
    await trx('dialogs').insert({ bot_id: botId, chat_id: chatId }).onConflict(['bot_id', 'chat_id']).ignore();
    const row = (await trx('dialogs').where({ bot_id: botId, chat_id: chatId }).forUpdate().first(COLUMNS)) as DialogRow;
    const current = toRecord(row);
    const state = applyScriptChanges(current.state, run.changes, run.baseSeq);
    Object.assign(state.seqs, run.marks);
    const update: Record<string, unknown> = {
      status: state.status,
      step_id: state.stepId,
      fields: JSON.stringify(state.fields),
      tags: state.tags,
      seqs: JSON.stringify(state.seqs),
      updated_at: trx.fn.now(),
    };
    if (run.runVersion !== undefined) update.run_version = run.runVersion;
    if (run.lastUpdateId !== undefined) update.last_update_id = Math.max(run.lastUpdateId, current.lastUpdateId);
    if (run.started) {
      update.username = run.started.username;
      update.name = run.started.name;
      update.first_name = run.started.firstName;
      update.last_name = run.started.lastName;
      update.started_at = current.startedAt ?? trx.fn.now();
    }
    const [saved] = await trx('dialogs').where({ bot_id: botId, chat_id: chatId }).update(update).returning(COLUMNS);
    return toRecord(saved as DialogRow);
  });
}

/** Keeps a message the user wrote (for the operator while the dialog is manual). */
export async function storeIncomingMessage(db: Knex, botId: string, chatId: number, text: string | null, payload: unknown): Promise<void> {
  await db('dialogs').insert({ bot_id: botId, chat_id: chatId }).onConflict(['bot_id', 'chat_id']).ignore();
  await db('dialog_messages').insert({ bot_id: botId, chat_id: chatId, direction: 'in', text, payload: JSON.stringify(payload) });
}
