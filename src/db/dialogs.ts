import type { Knex } from 'knex';
import type { DialogStatus, FieldValue } from '../domain/dialog.js';
import type { DialogRef } from './dialog-rows.js';

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

const VIEW_COLUMNS = [
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
];

function viewQuery(db: Knex): Knex.QueryBuilder {
  return db('dialogs as d')
    .leftJoin('script_steps as s', 's.id', 'd.step_id')
    .leftJoin('clicks as fc', 'fc.id', 'd.first_click_id')
    .leftJoin('clicks as lc', 'lc.id', 'd.latest_click_id');
}

function toView(row: DialogViewRow): DialogView {
  return {
    chatId: Number(row.chat_id),
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

export async function findDialog(db: Knex, botId: string, chatId: number): Promise<DialogView | null> {
  const row = await viewQuery(db)
    .where({ 'd.bot_id': botId, 'd.chat_id': chatId })
    .first<DialogViewRow | undefined>(VIEW_COLUMNS);
  return row ? toView(row) : null;
}

/** A dialog's status and the key of its step, no more (what a live transcript polls for); null when there is no such dialog. */
export async function findDialogStatus(
  db: Knex,
  botId: string,
  chatId: number,
): Promise<{ status: DialogStatus; stepKey: string | null } | null> {
  const row: { status: DialogStatus; step_key: string | null } | undefined = await db('dialogs as d')
    .leftJoin('script_steps as s', 's.id', 'd.step_id')
    .where({ 'd.bot_id': botId, 'd.chat_id': chatId })
    .first('d.status', 's.key as step_key');
  return row ? { status: row.status, stepKey: row.step_key } : null;
}

/** When each of these dialogs of a bot last changed (a listing's "last activity"); unknown ones are left out. */
export async function dialogsUpdatedAt(
  db: Knex,
  botId: string,
  chatIds: readonly number[],
): Promise<Map<number, Date>> {
  if (chatIds.length === 0) return new Map();
  const rows = await db('dialogs')
    .where({ bot_id: botId })
    .whereIn('chat_id', chatIds)
    .select<Array<{ chat_id: string | number; updated_at: Date }>>('chat_id', 'updated_at');
  return new Map(rows.map((row) => [Number(row.chat_id), row.updated_at]));
}

/** Which dialogs a listing shows; every condition must hold. */
export interface DialogFilter {
  status?: DialogStatus;
  stepId?: string;
  /** The dialog has every one of these tags. */
  tags?: string[];
  /** Custom field KEY equals the text (or, for a number field, the number; for a multiselect, holds it). */
  fields?: Record<string, string>;
  /** The dialog's first or latest click is of this campaign. */
  campaignId?: string;
  started?: boolean;
  updatedSince?: Date;
  /** Case-insensitive substring of name or username. */
  q?: string;
}

/** Where a listing page ends: the last dialog's updated_at (in microseconds since the epoch, exact) and chat id. */
export interface DialogListPosition {
  updatedAtMicros: string;
  chatId: string;
}

/** `%`, `_` and `\` taken literally in a LIKE pattern. */
function likeLiteral(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/** Narrows a query over `dialogs as d` to the dialogs `filter` names (the listing's, and a broadcast's audience). */
export function whereDialogMatches(db: Knex, query: Knex.QueryBuilder, filter: DialogFilter): void {
  if (filter.status) void query.where('d.status', filter.status);
  if (filter.stepId) void query.where('d.step_id', filter.stepId);
  if (filter.tags?.length) {
    void query.whereRaw(`d.tags @> array[${filter.tags.map(() => '?').join(', ')}]::text[]`, filter.tags);
  }
  for (const [key, value] of Object.entries(filter.fields ?? {})) {
    // Text (and select) values compare as text; a multiselect matches when it holds the value;
    // a number matches numerically (5 finds 5.0).
    const asNumber = value.trim() !== '' && Number.isFinite(Number(value)) ? Number(value) : null;
    void query.where((w) => {
      void w
        .whereRaw('d.fields -> ? @> to_jsonb(?::text)', [key, value])
        .orWhereRaw('d.fields ->> ? = ?', [key, value]);
      if (asNumber !== null) void w.orWhereRaw('d.fields -> ? = to_jsonb(?::numeric)', [key, value.trim()]);
    });
  }
  if (filter.campaignId) {
    void query.whereExists((sub) => {
      void sub
        .select(db.raw('1'))
        .from('clicks as k')
        .whereRaw('k.id in (d.first_click_id, d.latest_click_id)')
        .andWhere('k.campaign_id', filter.campaignId!);
    });
  }
  if (filter.started !== undefined) {
    void (filter.started ? query.whereNotNull('d.started_at') : query.whereNull('d.started_at'));
  }
  if (filter.updatedSince) void query.where('d.updated_at', '>=', filter.updatedSince);
  if (filter.q) {
    const pattern = `%${likeLiteral(filter.q)}%`;
    void query.where((w) => {
      void w.whereRaw("d.name ilike ? escape '\\'", [pattern]).orWhereRaw("d.username ilike ? escape '\\'", [pattern]);
    });
  }
}

/**
 * A bot's dialogs, newest activity first (updated_at, then chat id, both descending), `limit` of
 * them after `after`; `next` is where the following page starts, null on the last page.
 */
export async function listDialogs(
  db: Knex,
  botId: string,
  filter: DialogFilter,
  limit: number,
  after: DialogListPosition | null,
): Promise<{ items: DialogView[]; next: DialogListPosition | null }> {
  const query = viewQuery(db).where('d.bot_id', botId);
  whereDialogMatches(db, query, filter);
  if (after) {
    void query.whereRaw(
      "(d.updated_at, d.chat_id) < (timestamptz 'epoch' + ?::bigint * interval '1 microsecond', ?::bigint)",
      [after.updatedAtMicros, after.chatId],
    );
  }
  const rows: Array<DialogViewRow & { updated_micros: string }> = await query
    .orderBy([
      { column: 'd.updated_at', order: 'desc' },
      { column: 'd.chat_id', order: 'desc' },
    ])
    .limit(limit + 1)
    .select([
      ...VIEW_COLUMNS,
      db.raw("(extract(epoch from d.updated_at - timestamptz 'epoch') * 1000000)::bigint::text as updated_micros"),
    ]);
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return {
    items: page.map(toView),
    next: rows.length > limit && last ? { updatedAtMicros: last.updated_micros, chatId: String(last.chat_id) } : null,
  };
}

/** Whether the dialog exists (a transcript of an unknown chat is a 404, an empty one is not). */
export async function dialogExists(db: Knex, ref: DialogRef): Promise<boolean> {
  const rows = await db('dialogs')
    .where({ bot_id: ref.botId, chat_id: ref.chatId })
    .limit(1)
    .select<unknown[]>('chat_id');
  return rows.length > 0;
}
