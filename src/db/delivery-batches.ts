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
 * (pending, same chain and count) advances, and only its attempt is inserted.
 *
 * The rows are found through the primary key (`id = ANY`), never through the partial index of
 * pending deliveries: that index holds the whole backlog, and a plan that scans it for every batch
 * slows each write down as deliveries pile up. So the state is compared with a value of the row set
 * (`found_state`), which the planner cannot match with the index's predicate.
 */
export const RECORD_ATTEMPTS: NamedStatement = {
  name: 'flowpost_record_attempts',
  text: `
  WITH v AS (
    SELECT * FROM jsonb_to_recordset($1::jsonb) AS v(id uuid, found_state text, chain int, expected int, state text,
      last_error text, next_attempt_at timestamptz, started_at timestamptz, duration_ms int, status int, error text,
      error_kind text, response_excerpt text)
  ), advanced AS (
    UPDATE deliveries d SET state = v.state, attempt_count = v.expected + 1, last_error = v.last_error,
      next_attempt_at = v.next_attempt_at, updated_at = now(),
      finished_at = CASE WHEN v.state = 'pending' THEN NULL ELSE now() END
    FROM v
    WHERE d.id = ANY($2::uuid[]) AND d.id = v.id AND d.chain = v.chain AND d.attempt_count = v.expected
      AND d.state = v.found_state
    RETURNING d.id
  )
  INSERT INTO delivery_attempts (delivery_id, chain, attempt, started_at, duration_ms, status, error, error_kind, response_excerpt)
  SELECT v.id, v.chain, v.expected + 1, v.started_at, v.duration_ms, v.status, v.error, v.error_kind, v.response_excerpt
  FROM v JOIN advanced a ON a.id = v.id
  RETURNING delivery_id`,
};

/** The values of RECORD_ATTEMPTS for a batch of attempts. */
export function recordAttemptsValues(writes: readonly AttemptWrite[]): [string, string[]] {
  const rows = writes.map((w) => ({
    id: w.delivery.id,
    found_state: 'pending',
    chain: w.delivery.chain,
    expected: w.delivery.attemptCount,
    state: w.outcome.state,
    last_error: w.outcome.state === 'succeeded' ? null : (w.attempt.error ?? (w.attempt.status ? `HTTP ${w.attempt.status}` : null)),
    next_attempt_at: w.outcome.nextAttemptAt,
    started_at: w.attempt.startedAt,
    duration_ms: w.attempt.durationMs,
    status: w.attempt.status,
    error: w.attempt.error,
    error_kind: w.attempt.errorKind,
    response_excerpt: w.attempt.excerpt,
  }));
  return [JSON.stringify(rows), rows.map((row) => row.id)];
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
      const rows = await runNamed<{ delivery_id: string }>(db, RECORD_ATTEMPTS, recordAttemptsValues(writes));
      const recorded = new Set(rows.map((row) => row.delivery_id));
      return writes.map((w) => recorded.has(w.delivery.id));
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
