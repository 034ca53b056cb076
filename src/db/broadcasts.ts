import type { Knex } from 'knex';
import type { BroadcastContent } from '../domain/broadcasts/content.js';
import type { DialogStatus, FieldValue } from '../domain/dialog.js';
import { whereDialogMatches, type DialogFilter } from './dialogs.js';

export const BROADCAST_STATES = ['scheduled', 'running', 'paused', 'cancelled', 'done'] as const;
export type BroadcastState = (typeof BROADCAST_STATES)[number];

/** Where each recipient stands. `interrupted`: its send was under way when a worker stopped; never sent again. */
export type RecipientState = 'pending' | 'sending' | 'sent' | 'blocked' | 'failed' | 'skipped' | 'interrupted';

/** The audience as stored: the listing's filters, the step already resolved to its id. */
export type StoredAudience = Omit<DialogFilter, 'updatedSince'> & { updatedSince?: string };

export interface BroadcastRecord {
  id: string;
  botId: string;
  state: BroadcastState;
  audience: StoredAudience;
  content: BroadcastContent;
  startAt: Date;
  planned: number | null;
  startedAt: Date | null;
  finishedAt: Date | null;
  createdAt: Date;
  /** Set when done: how many recipients ended how. */
  finalCounts: Partial<Record<RecipientState, number>> | null;
}

interface BroadcastRow {
  id: string;
  bot_id: string;
  state: BroadcastState;
  audience: StoredAudience;
  message: BroadcastContent;
  start_at: Date;
  planned: number | null;
  started_at: Date | null;
  finished_at: Date | null;
  created_at: Date;
  final_counts: Partial<Record<RecipientState, number>> | null;
}

function toRecord(row: BroadcastRow): BroadcastRecord {
  return {
    id: row.id,
    botId: row.bot_id,
    state: row.state,
    audience: row.audience,
    content: row.message,
    startAt: row.start_at,
    planned: row.planned,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    createdAt: row.created_at,
    finalCounts: row.final_counts,
  };
}

export async function insertBroadcast(
  db: Knex,
  broadcast: { id: string; botId: string; audience: StoredAudience; content: BroadcastContent; startAt: Date },
): Promise<BroadcastRecord> {
  const [row] = await db('broadcasts')
    .insert({
      id: broadcast.id,
      bot_id: broadcast.botId,
      state: 'scheduled',
      audience: JSON.stringify(broadcast.audience),
      message: JSON.stringify(broadcast.content),
      start_at: broadcast.startAt,
    })
    .returning<BroadcastRow[]>('*');
  return toRecord(row!);
}

export async function findBroadcast(db: Knex, botId: string, id: string): Promise<BroadcastRecord | null> {
  const row = await db('broadcasts').where({ id, bot_id: botId }).first<BroadcastRow | undefined>();
  return row ? toRecord(row) : null;
}

export async function findBroadcastById(db: Knex, id: string): Promise<BroadcastRecord | null> {
  const row = await db('broadcasts').where({ id }).first<BroadcastRow | undefined>();
  return row ? toRecord(row) : null;
}

/** A bot's broadcasts, newest first. */
export async function listBroadcasts(db: Knex, botId: string, limit: number): Promise<BroadcastRecord[]> {
  const rows = await db('broadcasts').where({ bot_id: botId }).orderBy('created_at', 'desc').limit(limit).select();
  return (rows as BroadcastRow[]).map(toRecord);
}

/** How many recipients stand in each state (every state present, 0 where none). */
export type RecipientCounts = Record<RecipientState, number>;

function noRecipients(): RecipientCounts {
  return { pending: 0, sending: 0, sent: 0, blocked: 0, failed: 0, skipped: 0, interrupted: 0 };
}

/** The counts a done broadcast kept (`finalCounts`), every state present. */
export function keptCounts(finalCounts: Partial<Record<RecipientState, number>>): RecipientCounts {
  const counts = noRecipients();
  for (const [state, n] of Object.entries(finalCounts)) counts[state as RecipientState] = Number(n);
  return counts;
}

/**
 * How many recipients stand where, for progress, for each broadcast of `ids`: counted in one
 * query (a done broadcast's kept counts are keptCounts', not asked for here).
 */
export async function recipientCountsOf(db: Knex, ids: readonly string[]): Promise<Map<string, RecipientCounts>> {
  const counts = new Map(ids.map((id) => [id, noRecipients()]));
  if (ids.length === 0) return counts;
  const rows = await db('broadcast_recipients')
    .whereIn('broadcast_id', ids)
    .groupBy('broadcast_id', 'state')
    .select<Array<{ broadcast_id: string; state: RecipientState; n: string }>>(
      'broadcast_id',
      'state',
      db.raw('count(*) as n'),
    );
  for (const row of rows) {
    const of = counts.get(row.broadcast_id);
    if (of) of[row.state] = Number(row.n);
  }
  return counts;
}

/**
 * Moves a broadcast between states where `from` allows it (pause, resume, cancel); resolves the
 * broadcast after the move, or null when it was not in one of `from`.
 */
export async function moveBroadcast(
  db: Knex,
  id: string,
  from: readonly BroadcastState[],
  to: BroadcastState,
): Promise<BroadcastRecord | null> {
  const [row] = await db('broadcasts')
    .where({ id })
    .whereIn('state', from)
    .update({
      state: to,
      updated_at: db.fn.now(),
      ...(to === 'cancelled' || to === 'done' ? { finished_at: db.fn.now() } : {}),
    })
    .returning<BroadcastRow[]>('*');
  return row ? toRecord(row) : null;
}

/**
 * Starts a scheduled broadcast whose time has come: its audience is taken as it is now (every
 * started dialog in `auto` that the filters match, one row each) and it becomes `running`, in one
 * transaction. Resolves the broadcast as it is after; a broadcast already started is left as it is.
 */
export async function startBroadcast(db: Knex, id: string): Promise<BroadcastRecord | null> {
  return db.transaction(async (trx) => {
    // Due by the database's clock, as the sweeper judges it (not this process's).
    const row = await trx('broadcasts')
      .where({ id })
      .forUpdate()
      .first<(BroadcastRow & { due: boolean }) | undefined>(trx.raw('*, start_at <= now() AS due'));
    if (!row) return null;
    if (row.state !== 'scheduled' || !row.due) return toRecord(row);
    const { updatedSince, ...filters } = row.audience;
    const audience: DialogFilter = { ...filters, ...(updatedSince ? { updatedSince: new Date(updatedSince) } : {}) };
    const select = trx('dialogs as d')
      .where('d.bot_id', row.bot_id)
      .where('d.status', 'auto')
      .whereNotNull('d.started_at')
      .select(trx.raw('?::uuid', [id]), 'd.chat_id');
    whereDialogMatches(trx, select, audience);
    const inserted = await trx.raw<{ rowCount: number }>(
      'INSERT INTO broadcast_recipients (broadcast_id, chat_id) ? ON CONFLICT DO NOTHING',
      [select],
    );
    const [started] = await trx('broadcasts')
      .where({ id })
      .update({ state: 'running', planned: inserted.rowCount, started_at: trx.fn.now(), updated_at: trx.fn.now() })
      .returning<BroadcastRow[]>('*');
    return toRecord(started!);
  });
}

/** Broadcasts a worker should be running: running ones, and scheduled ones whose time has come. */
export async function dueBroadcasts(db: Knex, limit: number): Promise<Array<{ id: string; botId: string }>> {
  const rows = await db('broadcasts')
    .where((w) => {
      void w.where('state', 'running').orWhere((s) => {
        void s.where('state', 'scheduled').andWhere('start_at', '<=', db.fn.now());
      });
    })
    .orderBy('start_at')
    .limit(limit)
    .select<Array<{ id: string; bot_id: string }>>('id', 'bot_id');
  return rows.map((row) => ({ id: row.id, botId: row.bot_id }));
}

/** A pending recipient with what its message is rendered from, as it is when read. */
export interface NextRecipient {
  chatId: number;
  username: string | null;
  name: string | null;
  status: DialogStatus | null;
  stepId: string | null;
  stepKey: string | null;
  fields: Record<string, FieldValue>;
  tracker: Record<string, string>;
  startedAt: Date | null;
  /** The dialog's latest order, for writing `blocked` no newer than what it has seen. */
  lastSeq: number;
}

/**
 * The next `limit` pending recipients, in chat order, read (not claimed): each is claimed by
 * claimRecipient only just before its send, so that a worker that dies leaves `sending` only
 * the sends it had under way, not a whole batch that never went out. `afterChatId` reads on past
 * a batch still being sent. The recipients are picked before the join: a broadcast just started
 * has no statistics yet, and a join planned for "one row" over 50,000 pending ones took 80 ms a
 * batch.
 */
export async function nextRecipients(
  db: Knex,
  broadcastId: string,
  limit: number,
  afterChatId: number | null = null,
): Promise<NextRecipient[]> {
  const result = await db.raw<{
    rows: Array<{
      chat_id: string;
      username: string | null;
      name: string | null;
      status: DialogStatus | null;
      step_id: string | null;
      step_key: string | null;
      fields: Record<string, FieldValue> | null;
      tracker: Record<string, string> | null;
      started_at: Date | null;
      last_seq: string | null;
    }>;
  }>(
    `SELECT r.chat_id, d.username, d.name, d.status, d.step_id, s.key AS step_key, d.fields, d.tracker,
            d.started_at, d.last_seq
     FROM (SELECT chat_id FROM broadcast_recipients
           WHERE broadcast_id = ? AND state = 'pending' AND chat_id > ?
           ORDER BY chat_id LIMIT ?) r
     LEFT JOIN dialogs d ON d.bot_id = (SELECT bot_id FROM broadcasts WHERE id = ?) AND d.chat_id = r.chat_id
     LEFT JOIN script_steps s ON s.id = d.step_id
     ORDER BY r.chat_id`,
    [broadcastId, afterChatId ?? Number.MIN_SAFE_INTEGER, limit, broadcastId],
  );
  return result.rows.map((row) => ({
    chatId: Number(row.chat_id),
    username: row.username,
    name: row.name,
    status: row.status,
    stepId: row.step_id,
    stepKey: row.step_key,
    fields: row.fields ?? {},
    tracker: row.tracker ?? {},
    startedAt: row.started_at,
    lastSeq: Number(row.last_seq ?? 0),
  }));
}

/**
 * Claims one recipient for its send, just before it: `pending` → `sending`, once (a second runner
 * overlapping this one, say while a lost lease is noticed, finds it `taken`). A recipient whose
 * dialog is no longer a started one in `auto` is settled `skipped` instead.
 */
export async function claimRecipient(
  db: Knex,
  broadcast: { id: string; botId: string },
  chatId: number,
): Promise<'claimed' | 'taken' | 'skipped'> {
  // The dialog's status is read in the claim itself: a dialog taken over (or blocked) after its
  // batch was read is skipped, never mailed.
  const result = await db.raw<{ rows: Array<{ state: RecipientState }> }>(
    `UPDATE broadcast_recipients r
     SET state = CASE WHEN d.ok THEN 'sending' ELSE 'skipped' END,
         error = CASE WHEN d.ok THEN NULL ELSE 'the dialog is ' || coalesce(d.status, 'gone') || ' at its turn' END,
         attempts = r.attempts + 1, updated_at = now()
     FROM (SELECT (SELECT status FROM dialogs WHERE bot_id = ? AND chat_id = ?) AS status,
                  EXISTS (SELECT 1 FROM dialogs WHERE bot_id = ? AND chat_id = ? AND status = 'auto'
                          AND started_at IS NOT NULL) AS ok) d
     WHERE r.broadcast_id = ? AND r.chat_id = ? AND r.state = 'pending'
     RETURNING r.state`,
    [broadcast.botId, chatId, broadcast.botId, chatId, broadcast.id, chatId],
  );
  const state = result.rows[0]?.state;
  return state === 'sending' ? 'claimed' : state === 'skipped' ? 'skipped' : 'taken';
}

/** How a claimed recipient ended. */
export interface RecipientOutcome {
  chatId: number;
  state: Exclude<RecipientState, 'pending' | 'sending'>;
  error?: string | null;
  telegramMessageId?: number | null;
}

/** Writes how claimed recipients ended (only those still `sending`: an outcome is written once). */
export async function finishRecipients(
  db: Knex,
  broadcastId: string,
  outcomes: readonly RecipientOutcome[],
): Promise<void> {
  if (outcomes.length === 0) return;
  const rows = outcomes.map((o) => ({
    c: o.chatId,
    s: o.state,
    e: o.error ? o.error.slice(0, 500) : null,
    m: o.telegramMessageId ?? null,
  }));
  await db.raw(
    `UPDATE broadcast_recipients r SET state = v.s, error = v.e, telegram_message_id = v.m, updated_at = now()
     FROM jsonb_to_recordset(?::jsonb) AS v(c bigint, s text, e text, m bigint)
     WHERE r.broadcast_id = ? AND r.chat_id = v.c AND r.state = 'sending'`,
    [JSON.stringify(rows), broadcastId],
  );
}

/** Puts claimed recipients back (Telegram held the bot before they were sent). */
export async function releaseRecipients(db: Knex, broadcastId: string, chatIds: readonly number[]): Promise<void> {
  if (chatIds.length === 0) return;
  await db('broadcast_recipients')
    .where({ broadcast_id: broadcastId, state: 'sending' })
    .whereIn('chat_id', chatIds)
    .update({ state: 'pending', updated_at: db.fn.now() });
}

/**
 * Recipients a runner that stopped left `sending`: their send may or may not have reached
 * Telegram, so none is sent again (at most once); they are counted as `interrupted`. Only the one
 * runner of the broadcast calls this, when it takes the broadcast over.
 */
export async function interruptSending(db: Knex, broadcastId: string): Promise<number> {
  return db('broadcast_recipients').where({ broadcast_id: broadcastId, state: 'sending' }).update({
    state: 'interrupted',
    error: 'the worker stopped while this send was under way; not sent again',
    updated_at: db.fn.now(),
  });
}

/** Marks the broadcast done when no recipient is left to send; resolves whether it did. */
export async function finishIfDone(db: Knex, broadcastId: string): Promise<boolean> {
  const result = await db.raw<{ rowCount: number }>(
    `UPDATE broadcasts SET state = 'done', finished_at = now(), updated_at = now(),
       final_counts = (SELECT coalesce(jsonb_object_agg(c.state, c.n), '{}'::jsonb)
                       FROM (SELECT state, count(*) AS n FROM broadcast_recipients WHERE broadcast_id = ? GROUP BY state) c)
     WHERE id = ? AND state = 'running'
       AND NOT EXISTS (SELECT 1 FROM broadcast_recipients WHERE broadcast_id = ? AND state IN ('pending', 'sending'))`,
    [broadcastId, broadcastId, broadcastId],
  );
  return result.rowCount > 0;
}
