/**
 * What the process-wide gauges read at scrape time: the queues and the Postgres pools of the tiers
 * running in this process. A tier adds its sources when it starts and removes them when it closes,
 * so several tiers (tests, the all-in-one process) share the one set of metric objects.
 */
import type { Redis } from 'ioredis';
import type { Knex } from 'knex';
import { QUEUES } from '../jobs/queue-names.js';

export interface QueueFigures {
  queue: string;
  waiting: number;
  active: number;
  delayed: number;
  failed: number;
  oldestWaitingSeconds: number;
}

/** One prefix's figures; `queues` is null when Redis did not answer in time. */
export interface PrefixFigures {
  prefix: string;
  queues: QueueFigures[] | null;
}

const SCRAPE_TIMEOUT_MS = 1_000;

const queueSources = new Set<{ prefix: string; redis: Redis }>();
const pools = new Map<Knex, number>();

/** Every queue of `prefix` is read through `redis` at each scrape, until the returned function is called. */
export function addQueueSource(prefix: string, redis: Redis): () => void {
  const source = { prefix, redis };
  queueSources.add(source);
  return () => void queueSources.delete(source);
}

/** The pool of `db` is counted until the returned function is called (a pool added twice counts once). */
export function addPoolSource(db: Knex): () => void {
  pools.set(db, (pools.get(db) ?? 0) + 1);
  let removed = false;
  return () => {
    if (removed) return;
    removed = true;
    const count = (pools.get(db) ?? 1) - 1;
    if (count <= 0) pools.delete(db);
    else pools.set(db, count);
  };
}

/**
 * When the oldest waiting job became ready (ms): BullMQ's `timestamp` is when it was queued, and a
 * job queued with a delay (a step's delay) became ready when the delay ended. A retried job is
 * measured from its first queueing (BullMQ keeps no later time), so its age may be overstated.
 */
function readySince(timestamp: string | null, delay: string | null): number | null {
  const queuedAt = Number(timestamp);
  if (!timestamp || !Number.isFinite(queuedAt)) return null;
  const delayMs = Number(delay);
  return queuedAt + (Number.isFinite(delayMs) && delayMs > 0 ? delayMs : 0);
}

async function readPrefix(prefix: string, redis: Redis, now: number): Promise<QueueFigures[]> {
  const names = Object.values(QUEUES);
  const counts = redis.pipeline();
  for (const name of names) {
    const key = `${prefix}:${name}`;
    counts.llen(`${key}:wait`).llen(`${key}:paused`).zcard(`${key}:prioritized`);
    counts.llen(`${key}:active`).zcard(`${key}:delayed`).zcard(`${key}:failed`);
    // The wait list is pushed on the left: its oldest job is the last one.
    counts.lindex(`${key}:wait`, -1);
  }
  const answers = (await counts.exec()) ?? [];
  const values = answers.map(([error, value]) => {
    if (error) throw error;
    return value;
  });
  const jobs = redis.pipeline();
  names.forEach((name, index) => {
    const oldest = values[index * 7 + 6] as string | null;
    if (oldest) jobs.hmget(`${prefix}:${name}:${oldest}`, 'timestamp', 'delay');
    else jobs.echo('');
  });
  const oldest = (await jobs.exec()) ?? [];
  return names.map((queue, index) => {
    const at = (i: number) => Number(values[index * 7 + i] ?? 0);
    const found = oldest[index]?.[1];
    const since = Array.isArray(found) ? readySince(found[0] as string | null, found[1] as string | null) : null;
    return {
      queue,
      waiting: at(0) + at(1) + at(2),
      active: at(3),
      delayed: at(4),
      failed: at(5),
      oldestWaitingSeconds: since === null ? 0 : Math.max(0, (now - since) / 1000),
    };
  });
}

function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** Each added prefix's queue figures; a prefix whose Redis does not answer within a second has none. */
export async function queueFigures(): Promise<PrefixFigures[]> {
  const now = Date.now();
  const seen = new Set<string>();
  const reads: Array<Promise<PrefixFigures>> = [];
  for (const { prefix, redis } of queueSources) {
    // The all-in-one process may add a prefix twice (web and worker): read once.
    if (seen.has(prefix)) continue;
    seen.add(prefix);
    reads.push(
      within(readPrefix(prefix, redis, now), SCRAPE_TIMEOUT_MS).then(
        (queues) => ({ prefix, queues }),
        () => ({ prefix, queues: null }),
      ),
    );
  }
  return Promise.all(reads);
}

interface TarnPool {
  numUsed(): number;
  numFree(): number;
  numPendingAcquires(): number;
}

/** The added pools' connections, summed. */
export function poolFigures(): { used: number; free: number; pendingAcquires: number } {
  const total = { used: 0, free: 0, pendingAcquires: 0 };
  for (const db of pools.keys()) {
    // Knex's pool is a tarn Pool; it is gone once the Knex instance is destroyed.
    const pool = (db.client as { pool?: TarnPool | null }).pool;
    if (!pool) continue;
    total.used += pool.numUsed();
    total.free += pool.numFree();
    total.pendingAcquires += pool.numPendingAcquires();
  }
  return total;
}
