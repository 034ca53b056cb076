import type { Knex } from 'knex';
import { GroupCommit } from './group-commit.js';
import { runNamed, type NamedStatement } from './named-statement.js';
import { toDelivery, type DeliveryRecord, type DeliveryRow, type DeliveryState } from './deliveries.js';

export interface LoadedDelivery {
  delivery: DeliveryRecord;
  signingSecret: string | null;
}

export interface AttemptWrite {
  delivery: Pick<DeliveryRecord, 'id' | 'chain' | 'attemptCount'>;
  attempt: { startedAt: Date; durationMs: number; status: number | null; error: string | null; errorKind: string | null; excerpt: string | null };
  outcome: { state: DeliveryState; nextAttemptAt: Date | null };
}

// Not a named statement: `d.*` follows the table's columns, which a prepared plan must not see change.
const LOAD = 'SELECT d.*, b.signing_secret FROM deliveries d JOIN bots b ON b.id = d.bot_id WHERE d.id = ANY(?::uuid[])';

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
  const withoutNul = text.includes('\u0000') ? text.replace(/\u0000/g, '') : text;
  // Half of a surrogate pair (a cut taken mid-emoji) is not valid JSON text for Postgres: U+FFFD instead.
  return LONE_SURROGATE.test(withoutNul) ? withoutNul.replace(LONE_SURROGATE_ALL, '\uFFFD') : withoutNul;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const LONE_SURROGATE_ALL = new RegExp(LONE_SURROGATE.source, 'g');

/** `,"key":"text"` for a text value (escaped as JSON), nothing when there is none. */
const text = (key: string, value: string | null | undefined): string => (value == null ? '' : `,"${key}":${JSON.stringify(value)}`);
/** `,"key":n` for a finite number, nothing otherwise (JSON has no NaN: one bad value must not fail the batch). */
const num = (key: string, value: number | null | undefined): string => (value != null && Number.isFinite(value) ? `,"${key}":${value}` : '');
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
    const lastError = outcome.state === 'succeeded' ? null : (attempt.error ?? (attempt.status ? `HTTP ${attempt.status}` : null));
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
export class DeliveryBatches {
  private readonly loads: GroupCommit<string, LoadedDelivery | null>;
  private readonly writes: GroupCommit<AttemptWrite, boolean>;

  constructor(db: Knex) {
    this.loads = new GroupCommit(async (ids) => {
      const { rows } = await db.raw<{ rows: Array<DeliveryRow & { signing_secret: string | null }> }>(LOAD, [ids]);
      const byId = new Map(rows.map((row) => [row.id, { delivery: toDelivery(row), signingSecret: row.signing_secret }]));
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

  load(id: string): Promise<LoadedDelivery | null> {
    return this.loads.submit(id);
  }

  /** Records an attempt; false when the delivery had moved on (the attempt is dropped). */
  record(write: AttemptWrite): Promise<boolean> {
    return this.writes.submit(write);
  }
}
