/**
 * /readyz: whether this process can do its job now. Each check either resolves (ok) or throws a
 * reason; each is bounded by a short timeout so the probe answers even when a dependency hangs.
 */
import type { Redis } from 'ioredis';
import type { Knex } from 'knex';
import { pingDatabase } from '../db/connection.js';

export type Check = () => Promise<void>;

export interface CheckResult {
  ok: boolean;
  error?: string;
}

export interface Readiness {
  ok: boolean;
  checks: Record<string, CheckResult>;
}

const CHECK_TIMEOUT_MS = 1_000;

/** A reason fit for a public answer: short, without a URL's credentials. */
function reasonOf(error: unknown): string {
  const text = error instanceof Error ? error.message || error.name : String(error);
  return text.replace(/\/\/[^/\s:@]*:[^/\s@]*@/g, '//[redacted]@').slice(0, 200);
}

async function bounded(check: Check, timeoutMs: number): Promise<CheckResult> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([check(), late]);
    return { ok: true };
  } catch (error) {
    return { ok: false, error: reasonOf(error) };
  } finally {
    clearTimeout(timer);
  }
}

/** Runs every check at once, each within `timeoutMs`. */
export async function checkReadiness(checks: Record<string, Check>, timeoutMs = CHECK_TIMEOUT_MS): Promise<Readiness> {
  const names = Object.keys(checks);
  const results = await Promise.all(names.map((name) => bounded(checks[name]!, timeoutMs)));
  const out: Record<string, CheckResult> = {};
  names.forEach((name, index) => (out[name] = results[index]!));
  return { ok: results.every((result) => result.ok), checks: out };
}

/**
 * One probe at a time: a ping still pending (a hung Postgres holds it up to the pool's acquire
 * timeout) is awaited again rather than piling up more of them.
 */
function singleFlight(run: () => Promise<void>): Check {
  let pending: Promise<void> | null = null;
  return () => {
    pending ??= run().finally(() => {
      pending = null;
    });
    return pending;
  };
}

export function postgresCheck(db: Knex): Check {
  return singleFlight(() => pingDatabase(db));
}

export function redisCheck(redis: Redis): Check {
  return singleFlight(async () => {
    if (redis.status !== 'ready') throw new Error(`redis connection is ${redis.status}`);
    await redis.ping();
  });
}

/** Not ready while a queue's worker is paused on a Postgres outage. */
export function workersCheck(pausedQueues: () => string[]): Check {
  return () => {
    const paused = pausedQueues();
    return paused.length
      ? Promise.reject(new Error(`paused on a postgres outage: ${paused.join(', ')}`))
      : Promise.resolve();
  };
}
