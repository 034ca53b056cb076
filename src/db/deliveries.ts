import type { Knex } from 'knex';

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

export function toDelivery(row: DeliveryRow): DeliveryRecord {
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
  const row = await db('deliveries').where({ id }).first();
  return row ? toDelivery(row as DeliveryRow) : null;
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
  const attempts = await db('delivery_attempts')
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

/**
 * Records one attempt and the delivery's new state, together — only if the delivery is still as
 * the attempt found it (pending, same chain, same attempt count). An attempt that lost the race
 * (its worker was taken for dead and another carried on) is dropped. Returns whether it counted.
 */
export async function recordAttempt(
  db: Knex,
  delivery: DeliveryRecord,
  attempt: { startedAt: Date; durationMs: number; status: number | null; error: string | null; errorKind: string | null; excerpt: string | null },
  outcome: { state: DeliveryState; nextAttemptAt: Date | null },
): Promise<boolean> {
  return db.transaction(async (trx) => {
    const updated = await trx('deliveries')
      .where({ id: delivery.id, chain: delivery.chain, attempt_count: delivery.attemptCount, state: 'pending' })
      .update({
        state: outcome.state,
        attempt_count: delivery.attemptCount + 1,
        last_error: outcome.state === 'succeeded' ? null : (attempt.error ?? (attempt.status ? `HTTP ${attempt.status}` : null)),
        next_attempt_at: outcome.nextAttemptAt,
        updated_at: trx.fn.now(),
        finished_at: outcome.state === 'pending' ? null : trx.fn.now(),
      });
    if (updated === 0) return false;
    await trx('delivery_attempts').insert({
      delivery_id: delivery.id,
      chain: delivery.chain,
      attempt: delivery.attemptCount + 1,
      started_at: attempt.startedAt,
      duration_ms: attempt.durationMs,
      status: attempt.status,
      error: attempt.error,
      error_kind: attempt.errorKind,
      response_excerpt: attempt.excerpt,
    });
    return true;
  });
}

/**
 * Puts failed deliveries back to pending with a fresh chain of attempts (same message id, so
 * receivers still deduplicate). Returns the ids replayed.
 */
export async function replayDeliveries(db: Knex, where: { id?: string; botId?: string; since?: Date }): Promise<string[]> {
  const query = db('deliveries').where({ state: 'failed' });
  if (where.id) query.andWhere({ id: where.id });
  if (where.botId) query.andWhere({ bot_id: where.botId });
  if (where.since) query.andWhere('created_at', '>=', where.since);
  const rows = await query.update({
    state: 'pending',
    chain: db.raw('chain + 1'),
    attempt_count: 0,
    last_error: null,
    next_attempt_at: null,
    finished_at: null,
    updated_at: db.fn.now(),
  }, ['id']);
  return rows.map((row: { id: string }) => row.id);
}
