import type { Knex } from 'knex';
import { GroupCommit } from './group-commit.js';
import { runNamed, type NamedStatement } from './named-statement.js';

export const DELIVERY_STATES = ['pending', 'succeeded', 'failed'] as const;
export type DeliveryState = (typeof DELIVERY_STATES)[number];

export interface DeliveryRecord {
  id: string;
  botId: string;
  chatId: number | null;
  stepId: string | null;
  messageId: string;
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string | null;
  state: DeliveryState;
  chain: number;
  attemptCount: number;
  lastError: string | null;
  nextAttemptAt: Date | null;
  createdAt: Date;
  finishedAt: Date | null;
}

export interface AttemptRecord {
  chain: number;
  attempt: number;
  startedAt: Date;
  durationMs: number;
  status: number | null;
  error: string | null;
  errorKind: string | null;
  responseExcerpt: string | null;
}

export interface DeliveryRow {
  id: string;
  bot_id: string;
  chat_id: number | null;
  step_id: string | null;
  message_id: string;
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string | null;
  state: DeliveryState;
  chain: number;
  attempt_count: number;
  last_error: string | null;
  next_attempt_at: Date | null;
  created_at: Date;
  finished_at: Date | null;
}

interface AttemptRow {
  delivery_id: string;
  chain: number;
  attempt: number;
  started_at: Date;
  duration_ms: number;
  status: number | null;
  error: string | null;
  error_kind: string | null;
  response_excerpt: string | null;
}

function toDelivery(row: DeliveryRow): DeliveryRecord {
  return {
    id: row.id,
    botId: row.bot_id,
    chatId: row.chat_id,
    stepId: row.step_id,
    messageId: row.message_id,
    method: row.method,
    url: row.url,
    headers: row.headers,
    body: row.body,
    state: row.state,
    chain: row.chain,
    attemptCount: row.attempt_count,
    lastError: row.last_error,
    nextAttemptAt: row.next_attempt_at,
    createdAt: row.created_at,
    finishedAt: row.finished_at,
  };
}

export async function findDelivery(db: Knex, id: string): Promise<DeliveryRecord | null> {
  const row = await db<DeliveryRow>('deliveries').where({ id }).first();
  return row ? toDelivery(row) : null;
}

export async function listDeliveries(
  db: Knex,
  botId: string,
  filter: { state?: DeliveryState; limit: number; before?: Date },
): Promise<Array<DeliveryRecord & { attempts: AttemptRecord[] }>> {
  const query = db('deliveries').where({ bot_id: botId }).orderBy('created_at', 'desc').limit(filter.limit);
  if (filter.state) query.andWhere({ state: filter.state });
  if (filter.before) query.andWhere('created_at', '<', filter.before);
  const rows = (await query) as DeliveryRow[];
  if (rows.length === 0) return [];
  const attempts = await db<AttemptRow>('delivery_attempts')
    .whereIn(
      'delivery_id',
      rows.map((r) => r.id),
    )
    .orderBy(['delivery_id', 'chain', 'attempt']);
  const byDelivery = new Map<string, AttemptRecord[]>();
  for (const a of attempts) {
    const list = byDelivery.get(a.delivery_id) ?? [];
    list.push({
      chain: a.chain,
      attempt: a.attempt,
      startedAt: a.started_at,
      durationMs: a.duration_ms,
      status: a.status,
      error: a.error,
      errorKind: a.error_kind,
      responseExcerpt: a.response_excerpt,
    });
    byDelivery.set(a.delivery_id, list);
  }
  return rows.map((row) => ({ ...toDelivery(row), attempts: byDelivery.get(row.id) ?? [] }));
}

/** A delivery to record: the rendered request of a send_webhook step. */
export interface DeliveryToInsert {
  id: string;
  chatId: number | null;
  stepId: string | null;
  request: {
    botId: string;
    messageId: string;
    method: string;
    url: string;
    headers: Record<string, string>;
    body: string | null;
  };
}

/**
 * Inserts deliveries (those already recorded under their id are left as they are), each with the
 * batch job it is queued in, if any. Returns the ids inserted now.
 */
export async function insertDeliveries(
  db: Knex,
  deliveries: readonly DeliveryToInsert[],
  batchOf: ReadonlyMap<string, string>,
): Promise<Set<string>> {
  const inserted: Array<{ id: string }> = await db('deliveries')
    .insert(
      deliveries.map((delivery) => ({
        id: delivery.id,
        bot_id: delivery.request.botId,
        chat_id: delivery.chatId,
        step_id: delivery.stepId,
        message_id: delivery.request.messageId,
        method: delivery.request.method,
        url: delivery.request.url,
        headers: JSON.stringify(delivery.request.headers),
        body: delivery.request.body,
        queued_in: batchOf.get(delivery.id) ?? null,
      })),
    )
    .onConflict('id')
    .ignore()
    .returning('id');
  return new Set(inserted.map((row) => row.id));
}

/** Where each delivery's chain stands, and the batch job it was queued in. */
export interface DeliveryChainState {
  id: string;
  state: DeliveryState;
  chain: number;
  queuedIn: string | null;
}

export async function findChainStates(db: Knex, ids: readonly string[]): Promise<DeliveryChainState[]> {
  const rows: Array<{ id: string; state: DeliveryState; chain: number; queued_in: string | null }> = await db(
    'deliveries',
  )
    .whereIn('id', ids)
    .select('id', 'state', 'chain', 'queued_in');
  return rows.map((row) => ({ id: row.id, state: row.state, chain: row.chain, queuedIn: row.queued_in }));
}

/**
 * Pending deliveries with nothing due for `staleMs`: not updated for that long and no attempt due
 * within it (at most `limit`).
 */
export async function listStrandedDeliveries(
  db: Knex,
  staleMs: number,
  limit = 500,
): Promise<Array<{ id: string; queuedIn: string | null }>> {
  const rows: Array<{ id: string; queued_in: string | null }> = await db('deliveries')
    .where({ state: 'pending' })
    .andWhere('updated_at', '<', new Date(Date.now() - staleMs))
    .andWhere((q) => {
      q.whereNull('next_attempt_at').orWhere('next_attempt_at', '<', new Date(Date.now() - staleMs));
    })
    .limit(limit)
    .select('id', 'queued_in');
  return rows.map((row) => ({ id: row.id, queuedIn: row.queued_in }));
}

/** The bot's signing secret (`whsec_…`), which signs its deliveries; null when it signs none. */
export async function findSigningSecret(db: Knex, botId: string): Promise<string | null> {
  const row: { signing_secret: string | null } | undefined = await db('bots')
    .where({ id: botId })
    .first('signing_secret');
  return row?.signing_secret ?? null;
}

/**
 * Puts failed deliveries back to pending with a fresh chain of attempts (same message id, so
 * receivers still deduplicate). Returns the ids replayed.
 */
export async function replayDeliveries(
  db: Knex,
  where: { id?: string; botId?: string; since?: Date },
): Promise<string[]> {
  const query = db('deliveries').where({ state: 'failed' });
  if (where.id) query.andWhere({ id: where.id });
  if (where.botId) query.andWhere({ bot_id: where.botId });
  if (where.since) query.andWhere('created_at', '>=', where.since);
  const rows = await query.update(
    {
      state: 'pending',
      chain: db.raw('chain + 1'),
      attempt_count: 0,
      last_error: null,
      next_attempt_at: null,
      finished_at: null,
      updated_at: db.fn.now(),
    },
    ['id'],
  );
  return rows.map((row: { id: string }) => row.id);
}

export interface AttemptWrite {
  delivery: Pick<DeliveryRecord, 'id' | 'chain' | 'attemptCount'>;
  attempt: {
    startedAt: Date;
    durationMs: number;
    status: number | null;
    error: string | null;
    errorKind: string | null;
    excerpt: string | null;
  };
  outcome: { state: DeliveryState; nextAttemptAt: Date | null };
}

// Not a named statement: `*` follows the table's columns, which a prepared plan must not see change.
const LOAD = 'SELECT * FROM deliveries WHERE id = ANY(?::uuid[])';

/**
 * One statement records a batch of attempts: only a delivery still as its attempt found it
 * (pending, same chain and count) advances, and only its attempt is inserted. It returns the ids of
 * the attempts it dropped.
 *
 * The rows are found through the primary key (`id = ANY`), never through the partial index of
 * pending deliveries: that index holds the whole backlog, and a plan that scans it for every batch
 * slows each write down as deliveries pile up. So the state is compared with a value of the row set
 * (`found_state`, from the materialized CTE), which the planner cannot match with the index's
 * predicate.
 *
 * The attempts arrive as compact JSON (see `recordAttemptsValues`): short keys, absent when null,
 * times as epoch milliseconds.
 */
export const RECORD_ATTEMPTS: NamedStatement = {
  name: 'flowpost_record_attempts_v3',
  text: `
  WITH v AS MATERIALIZED (
    SELECT v.i AS id, 'pending'::text AS found_state, v.c AS chain, v.n AS expected, v.s AS state, v.le AS last_error,
      to_timestamp(v.na / 1000.0) AS next_attempt_at, to_timestamp(v.t / 1000.0) AS started_at, v.ms AS duration_ms,
      v.st AS status, v.e AS error, v.ek AS error_kind, v.x AS response_excerpt
    FROM json_to_recordset($1::json) AS v(i uuid, c int, n int, s text, le text, na float8, t float8, ms int, st int, e text, ek text, x text)
  ), advanced AS (
    UPDATE deliveries d SET state = v.state, attempt_count = v.expected + 1, last_error = v.last_error,
      next_attempt_at = v.next_attempt_at, updated_at = now(),
      finished_at = CASE WHEN v.state = 'pending' THEN NULL ELSE now() END
    FROM v
    WHERE d.id = ANY($2::uuid[]) AND d.id = v.id AND d.chain = v.chain AND d.attempt_count = v.expected
      AND d.state = v.found_state
    RETURNING d.id
  ), recorded AS (
    INSERT INTO delivery_attempts (delivery_id, chain, attempt, started_at, duration_ms, status, error, error_kind, response_excerpt)
    SELECT v.id, v.chain, v.expected + 1, v.started_at, v.duration_ms, v.status, v.error, v.error_kind, v.response_excerpt
    FROM v JOIN advanced a ON a.id = v.id
  )
  SELECT v.id AS delivery_id FROM v WHERE NOT EXISTS (SELECT 1 FROM advanced a WHERE a.id = v.id)`,
};

/** Postgres text holds no U+0000 and no half surrogate pair; a receiver's answer may. */
export function storableText(text: string | null | undefined): string | null {
  if (text === null || text === undefined) return null;
  // eslint-disable-next-line no-control-regex -- U+0000 is the one character to remove here
  const withoutNul = text.includes('\u0000') ? text.replace(/\u0000/g, '') : text;
  // Half of a surrogate pair (a cut taken mid-emoji) is not valid JSON text for Postgres: U+FFFD instead.
  return LONE_SURROGATE.test(withoutNul) ? withoutNul.replace(LONE_SURROGATE_ALL, '\uFFFD') : withoutNul;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const LONE_SURROGATE_ALL = new RegExp(LONE_SURROGATE.source, 'g');

/** `,"key":"text"` for a text value (escaped as JSON), nothing when there is none. */
const text = (key: string, value: string | null | undefined): string =>
  value == null ? '' : `,"${key}":${JSON.stringify(value)}`;
/** `,"key":n` for a finite number, nothing otherwise (JSON has no NaN: one bad value must not fail the batch). */
const num = (key: string, value: number | null | undefined): string =>
  value != null && Number.isFinite(value) ? `,"${key}":${value}` : '';
/** A whole number for an int column, whatever arrived. */
const int = (value: number): number => (Number.isFinite(value) ? Math.round(value) : 0);

/** When the attempt started, in epoch milliseconds (now, should its Date be invalid). */
const startedAtMs = (startedAt: Date): number => {
  const ms = startedAt.getTime();
  return Number.isFinite(ms) ? ms : Date.now();
};

/**
 * The values of RECORD_ATTEMPTS for a batch of attempts: the attempts as one JSON array, written
 * directly (a hot path: no object per row, no Date formatting), and their ids.
 */
export function recordAttemptsValues(writes: readonly AttemptWrite[]): [string, string[]] {
  const ids = new Array<string>(writes.length);
  let json = '[';
  for (let index = 0; index < writes.length; index++) {
    const { delivery, attempt, outcome } = writes[index]!;
    ids[index] = delivery.id;
    const lastError =
      outcome.state === 'succeeded' ? null : (attempt.error ?? (attempt.status ? `HTTP ${attempt.status}` : null));
    json +=
      `${index === 0 ? '' : ','}{"i":${JSON.stringify(delivery.id)},"c":${int(delivery.chain)},"n":${int(delivery.attemptCount)},"s":${JSON.stringify(outcome.state)}` +
      `,"t":${startedAtMs(attempt.startedAt)},"ms":${int(attempt.durationMs)}${num('st', attempt.status)}${num('na', outcome.nextAttemptAt?.getTime())}` +
      `${text('le', lastError)}${text('e', attempt.error)}${text('ek', attempt.errorKind)}${text('x', attempt.excerpt)}}`;
  }
  return [`${json}]`, ids];
}

/**
 * Reads and records deliveries for many concurrent attempts in few statements: loads gathered
 * into one SELECT, attempts into one statement (while one batch is written the next gathers).
 */
export class DeliveryStore {
  private readonly loads: GroupCommit<string, DeliveryRecord | null>;
  private readonly writes: GroupCommit<AttemptWrite, boolean>;

  constructor(db: Knex) {
    this.loads = new GroupCommit(async (ids) => {
      const { rows } = await db.raw<{ rows: DeliveryRow[] }>(LOAD, [ids]);
      const byId = new Map(rows.map((row) => [row.id, toDelivery(row)]));
      return ids.map((id) => byId.get(id) ?? null);
    }, 500);
    this.writes = new GroupCommit(async (writes) => {
      // The statement returns the attempts it dropped (normally none), not every one it recorded.
      const dropped = await runNamed<{ delivery_id: string }>(db, RECORD_ATTEMPTS, recordAttemptsValues(writes));
      if (dropped.length === 0) return writes.map(() => true);
      const ids = new Set(dropped.map((row) => row.delivery_id));
      return writes.map((w) => !ids.has(w.delivery.id));
    }, 500);
  }

  /** The delivery, if it is still to be delivered (pending). */
  async loadPending(id: string): Promise<DeliveryRecord | null> {
    const delivery = await this.loads.submit(id);
    return delivery && delivery.state === 'pending' ? delivery : null;
  }

  /** Records an attempt; false when the delivery had moved on (the attempt is dropped). */
  record(write: AttemptWrite): Promise<boolean> {
    return this.writes.submit(write);
  }
}
