/** The dialog model shared by every process type. */
export const DIALOG_STATUSES = ['auto', 'manual', 'blocked'] as const;
export type DialogStatus = (typeof DIALOG_STATUSES)[number];

export function parseStatus(value: string): DialogStatus | null {
  const lower = value.trim().toLowerCase();
  return (DIALOG_STATUSES as readonly string[]).includes(lower) ? (lower as DialogStatus) : null;
}

/** A custom field's stored value: text, number, date (ISO string), link, select, multiselect (string[]). */
export type FieldValue = string | number | boolean | string[];

/** What one accepted update asks of a dialog. `null` clears a field. */
export interface DialogPatch {
  status?: DialogStatus;
  /** A postback always names a step; the script may also leave the dialog on none (null). */
  stepId?: string | null;
  /** The key of `stepId` when the update was accepted, so that the move survives a script upload that renames its id away. */
  stepKey?: string;
  fields?: Record<string, FieldValue | null>;
  tracker?: Record<string, string | null>;
  addTags?: string[];
  removeTags?: string[];
}

/** The part of a dialog that updates write, with the acceptance order of each key's last write. */
export interface DialogState {
  status: DialogStatus;
  stepId: string | null;
  fields: Record<string, FieldValue>;
  tracker: Record<string, string>;
  tags: string[];
  seqs: Record<string, number>;
  lastSeq: number;
}

export function emptyDialogState(): DialogState {
  return { status: 'auto', stepId: null, fields: {}, tracker: {}, tags: [], seqs: {}, lastSeq: 0 };
}
