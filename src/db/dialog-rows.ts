import type { DialogState, DialogStatus } from '../domain/dialog.js';

/** The columns of a dialog row that updates and script runs write. */
export interface DialogStateRow {
  status: DialogStatus;
  step_id: string | null;
  fields: DialogState['fields'];
  tracker: DialogState['tracker'];
  tags: string[];
  seqs: Record<string, number>;
  last_seq: number;
}

export function rowState(row: DialogStateRow): DialogState {
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
