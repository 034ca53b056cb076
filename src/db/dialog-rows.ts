import type { DialogState, DialogStatus } from '../domain/dialog.js';
import type { DialogSnapshot, DialogTimer } from '../domain/inputs/types.js';

/** A dialog is (bot, chat). */
export interface DialogRef {
  botId: string;
  chatId: number;
}

/** One string per dialog, for maps and sets keyed by dialog. */
export function dialogKey(botId: string, chatId: number): string {
  return `${botId}/${chatId}`;
}

/** A dialog as its inputs are handled against: the snapshot plus the version its next write expects. */
export interface DialogRecord extends DialogSnapshot {
  version: number;
}

/**
 * The columns of a dialogs row that updates, decisions and drains read and write (every statement
 * of the input path selects or returns these). The management API's view is another use with
 * other columns: see dialogs.ts.
 */
export interface DialogRow {
  status: DialogStatus;
  step_id: string | null;
  fields: DialogState['fields'];
  tracker: DialogState['tracker'];
  tags: string[];
  seqs: Record<string, number>;
  last_seq: number;
  username: string | null;
  name: string | null;
  started_at: Date | null;
  timer: DialogTimer | null;
  version: string | number;
}

const DIALOG_ROW_COLUMNS: ReadonlyArray<keyof DialogRow> = [
  'status',
  'step_id',
  'fields',
  'tracker',
  'tags',
  'seqs',
  'last_seq',
  'username',
  'name',
  'started_at',
  'timer',
  'version',
];

/** The columns of DialogRow, each prefixed with `alias.`, for a select or returning list. */
export function dialogRowColumns(alias: string): string {
  return DIALOG_ROW_COLUMNS.map((column) => `${alias}.${column}`).join(', ');
}

export function rowState(row: DialogRow): DialogState {
  return {
    status: row.status,
    stepId: row.step_id,
    fields: row.fields,
    tracker: row.tracker,
    tags: row.tags,
    seqs: row.seqs,
    lastSeq: row.last_seq,
  };
}

export function toRecord(row: DialogRow): DialogRecord {
  return {
    state: rowState(row),
    username: row.username,
    name: row.name,
    startedAt: row.started_at,
    timer: row.timer,
    version: Number(row.version),
  };
}
