import type { Knex } from 'knex';
import { GroupCommit } from './group-commit.js';
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

const LOAD = `
  SELECT d.*, b.signing_secret FROM deliveries d JOIN bots b ON b.id = d.bot_id WHERE d.id = ANY(?::uuid[])`;

// One statement: only a delivery still as its attempt found it (pending, same chain and count)
// advances, and only its attempt is inserted.
const RECORD = `
  WITH v AS (
    SELECT * FROM jsonb_to_recordset(?::jsonb) AS v(id uuid, chain int, expected int, state text, last_error text,
      next_attempt_at timestamptz, started_at timestamptz, duration_ms int, status int, error text, error_kind text,
      response_excerpt text)
  ), advanced AS (
    UPDATE deliveries d SET state = v.state, attempt_count = v.expected + 1, last_error = v.last_error,
      next_attempt_at = v.next_attempt_at, updated_at = now(),
      finished_at = CASE WHEN v.state = 'pending' THEN NULL ELSE now() END
    FROM v
    WHERE d.id = v.id AND d.chain = v.chain AND d.attempt_count = v.expected AND d.state = 'pending'
    RETURNING d.id
  )
  INSERT INTO delivery_attempts (delivery_id, chain, attempt, started_at, duration_ms, status, error, error_kind, response_excerpt)
  SELECT v.id, v.chain, v.expected + 1, v.started_at, v.duration_ms, v.status, v.error, v.error_kind, v.response_excerpt
  FROM v JOIN advanced a ON a.id = v.id
  RETURNING delivery_id`;

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
      const rows = writes.map((w) => ({
        id: w.delivery.id,
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
      const result = await db.raw<{ rows: Array<{ delivery_id: string }> }>(RECORD, [JSON.stringify(rows)]);
      const recorded = new Set(result.rows.map((row) => row.delivery_id));
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
