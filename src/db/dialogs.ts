import type { Knex } from 'knex';
import type { DialogStatus, FieldValue } from '../domain/dialog.js';

/** A dialog as the management API shows it. */
export interface DialogView {
  chatId: number;
  username: string | null;
  name: string | null;
  status: DialogStatus;
  stepId: string | null;
  stepKey: string | null;
  fields: Record<string, FieldValue>;
  tracker: Record<string, string>;
  tags: string[];
  createdAt: string;
  startedAt: string | null;
  /** Why flowpost itself handed the dialog to an operator (a step removed by a script upload), if it did. */
  manualReason: string | null;
  /** The click ids of the first and the latest click the dialog claimed (API.md §5). */
  firstClickId: string | null;
  latestClickId: string | null;
}

/** The columns findDialog reads (the step's key from the joined script step). */
interface DialogViewRow {
  chat_id: number;
  username: string | null;
  name: string | null;
  status: DialogStatus;
  step_id: string | null;
  step_key: string | null;
  fields: Record<string, FieldValue>;
  tracker: Record<string, string>;
  tags: string[];
  created_at: Date;
  started_at: Date | null;
  manual_reason: string | null;
  first_clickid: string | null;
  latest_clickid: string | null;
}

export async function findDialog(db: Knex, botId: string, chatId: number): Promise<DialogView | null> {
  const row = await db('dialogs as d')
    .leftJoin('script_steps as s', 's.id', 'd.step_id')
    .leftJoin('clicks as fc', 'fc.id', 'd.first_click_id')
    .leftJoin('clicks as lc', 'lc.id', 'd.latest_click_id')
    .where({ 'd.bot_id': botId, 'd.chat_id': chatId })
    .first<DialogViewRow | undefined>(
      'd.chat_id',
      'd.username',
      'd.name',
      'd.status',
      'd.step_id',
      's.key as step_key',
      'd.fields',
      'd.tracker',
      'd.tags',
      'd.created_at',
      'd.started_at',
      'd.manual_reason',
      'fc.clickid as first_clickid',
      'lc.clickid as latest_clickid',
    );
  if (!row) return null;
  return {
    chatId: row.chat_id,
    username: row.username,
    name: row.name,
    status: row.status,
    stepId: row.step_id,
    stepKey: row.step_key ?? null,
    fields: row.fields,
    tracker: row.tracker,
    tags: row.tags,
    createdAt: row.created_at.toISOString(),
    startedAt: row.started_at ? row.started_at.toISOString() : null,
    manualReason: row.manual_reason ?? null,
    firstClickId: row.first_clickid ?? null,
    latestClickId: row.latest_clickid ?? null,
  };
}
