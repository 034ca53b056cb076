import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertBot } from '../../src/db/bots.js';
import { createDb, type Db } from '../../src/db/connection.js';
import {
  DeliveryStore,
  RECORD_ATTEMPTS,
  recordAttemptsValues,
  storableText,
  type AttemptWrite,
} from '../../src/db/deliveries.js';
import { databaseUrl } from '../support/database.js';

const BACKLOG = 5_000;

let db: Db;
let botId: string;
const ids: string[] = [];

beforeAll(async () => {
  db = createDb(databaseUrl());
  botId = (await insertBot(db, { name: 'records', timezone: 'UTC', telegram: null })).id;
  // A backlog of pending deliveries, inserted just now (the table's statistics do not know of it yet).
  for (let start = 0; start < BACKLOG; start += 1_000) {
    const rows = Array.from({ length: 1_000 }, () => {
      const id = randomUUID();
      ids.push(id);
      return {
        id,
        bot_id: botId,
        chat_id: 1,
        message_id: `msg_${id}`,
        method: 'GET',
        url: `http://example.test/${id}`,
        headers: '{}',
      };
    });
    await db('deliveries').insert(rows);
  }
});
afterAll(async () => {
  await db?.('bots').where({ id: botId }).delete();
  await db?.destroy();
});

const success = (id: string, attemptCount = 0): AttemptWrite => ({
  delivery: { id, chain: 1, attemptCount },
  attempt: { startedAt: new Date(), durationMs: 3, status: 200, error: null, errorKind: null, excerpt: 'ok' },
  outcome: { state: 'succeeded', nextAttemptAt: null },
});

describe('recording a batch of attempts', () => {
  it('finds its deliveries by primary key, not by scanning the backlog of pending ones', async () => {
    const client = new pg.Client({ connectionString: databaseUrl() });
    await client.connect();
    try {
      const writes = ids.slice(0, 24).map((id) => success(id));
      const { rows } = await client.query(
        `EXPLAIN (FORMAT JSON) ${RECORD_ATTEMPTS.text}`,
        recordAttemptsValues(writes),
      );
      const plan = JSON.stringify(rows[0]['QUERY PLAN']);
      expect(plan).toContain('"Index Name":"deliveries_pkey"');
      expect(plan).not.toContain('deliveries_pending_idx');
    } finally {
      await client.end();
    }
  });

  it('advances only deliveries still as their attempt found them', async () => {
    const batches = new DeliveryStore(db);
    const [fresh, other, stale] = [ids[100]!, ids[101]!, ids[102]!];
    const results = await Promise.all([
      batches.record(success(fresh)),
      batches.record(success(other)),
      batches.record(success(stale, 4)),
    ]);
    expect(results).toEqual([true, true, false]);
    expect(await batches.record(success(fresh))).toBe(false);
    const rows = await db('deliveries').whereIn('id', [fresh, other, stale]).orderBy('id');
    const byId = new Map(rows.map((row: { id: string; state: string; attempt_count: number }) => [row.id, row]));
    expect(byId.get(fresh)).toMatchObject({ state: 'succeeded', attempt_count: 1 });
    expect(byId.get(stale)).toMatchObject({ state: 'pending', attempt_count: 0 });
    expect(
      await db('delivery_attempts')
        .whereIn('delivery_id', [fresh, other, stale])
        .count<{ count: number }[]>('* as count'),
    ).toEqual([{ count: 2 }]);
  });

  it('records every field of an attempt as given: free text, missing values, times to the millisecond', async () => {
    const batches = new DeliveryStore(db);
    const [retried, refused] = [ids[200]!, ids[201]!];
    const startedAt = new Date('2026-11-22T10:11:12.345Z');
    const nextAttemptAt = new Date('2026-11-22T10:16:12.789Z');
    const awkward = 'HTTP 503 "busy"\n\\ back soon — ñ, 😀, \u0001';
    await Promise.all([
      batches.record({
        delivery: { id: retried, chain: 1, attemptCount: 0 },
        attempt: { startedAt, durationMs: 1234, status: 503, error: null, errorKind: null, excerpt: awkward },
        outcome: { state: 'pending', nextAttemptAt },
      }),
      batches.record({
        delivery: { id: refused, chain: 1, attemptCount: 0 },
        attempt: {
          startedAt,
          durationMs: 0,
          status: null,
          error: 'refused: "127.0.0.1" is loopback',
          errorKind: 'refused_target',
          excerpt: null,
        },
        outcome: { state: 'failed', nextAttemptAt: null },
      }),
    ]);
    const attempts = await db('delivery_attempts').whereIn('delivery_id', [retried, refused]).select('*');
    const byId = new Map(attempts.map((row: { delivery_id: string }) => [row.delivery_id, row]));
    expect(byId.get(retried)).toMatchObject({
      chain: 1,
      attempt: 1,
      started_at: startedAt,
      duration_ms: 1234,
      status: 503,
      error: null,
      error_kind: null,
      response_excerpt: awkward,
    });
    expect(byId.get(refused)).toMatchObject({
      attempt: 1,
      duration_ms: 0,
      status: null,
      error: 'refused: "127.0.0.1" is loopback',
      error_kind: 'refused_target',
      response_excerpt: null,
    });
    const deliveries = new Map(
      (await db('deliveries').whereIn('id', [retried, refused]).select('*')).map(
        (row: { id: string; finished_at: Date | null }) => [row.id, row],
      ),
    );
    expect(deliveries.get(retried)).toMatchObject({
      state: 'pending',
      attempt_count: 1,
      last_error: 'HTTP 503',
      next_attempt_at: nextAttemptAt,
      finished_at: null,
    });
    expect(deliveries.get(refused)).toMatchObject({
      state: 'failed',
      attempt_count: 1,
      last_error: 'refused: "127.0.0.1" is loopback',
      next_attempt_at: null,
    });
    expect(deliveries.get(refused)?.finished_at).toBeInstanceOf(Date);
  });

  it('one odd value (NaN, an invalid date, a missing text) does not make the batch invalid JSON', async () => {
    const batches = new DeliveryStore(db);
    const [odd, plain] = [ids[300]!, ids[301]!];
    const oddWrite: AttemptWrite = {
      delivery: { id: odd, chain: 1, attemptCount: 0 },
      attempt: {
        startedAt: new Date(Number.NaN),
        durationMs: Number.NaN,
        status: Number.POSITIVE_INFINITY,
        error: undefined as unknown as null,
        errorKind: null,
        excerpt: null,
      },
      outcome: { state: 'pending', nextAttemptAt: new Date(Number.NaN) },
    };
    expect(() => JSON.parse(recordAttemptsValues([oddWrite, success(plain)])[0])).not.toThrow();
    expect(await Promise.all([batches.record(oddWrite), batches.record(success(plain))])).toEqual([true, true]);
    const attempt = await db('delivery_attempts').where({ delivery_id: odd }).first();
    expect(attempt).toMatchObject({ duration_ms: 0, status: null, error: null });
    expect((await db('deliveries').where({ id: odd }).first()).next_attempt_at).toBeNull();
  });

  it('text is made storable: no U+0000, and half a surrogate pair becomes U+FFFD', async () => {
    const cut = '😀'.repeat(3).slice(0, 5); // two emoji and the first half of a third
    expect(storableText(`a\u0000b`)).toBe('ab');
    expect(storableText(cut)).toBe('😀😀\uFFFD');
    expect(storableText('\uDE00 tail')).toBe('\uFFFD tail');
    expect(storableText('😀 whole')).toBe('😀 whole');
    expect(storableText(null)).toBeNull();
    const batches = new DeliveryStore(db);
    const id = ids[302]!;
    const write: AttemptWrite = {
      delivery: { id, chain: 1, attemptCount: 0 },
      attempt: {
        startedAt: new Date(),
        durationMs: 1,
        status: 500,
        error: null,
        errorKind: null,
        excerpt: storableText(cut),
      },
      outcome: { state: 'pending', nextAttemptAt: new Date(Date.now() + 5_000) },
    };
    expect(await batches.record(write)).toBe(true);
    expect((await db('delivery_attempts').where({ delivery_id: id }).first()).response_excerpt).toBe('😀😀\uFFFD');
  });
});
