import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { scripts } from '../../redis/scripts.js';
import { requirePositiveInt } from './require-positive-int.js';

/**
 * `closed`: attempt. `half_open`: attempt — the caller is THE probe and must report the outcome.
 * `open`: do not attempt; reschedule to `retryAtMs` (Redis server time, epoch ms) without spending
 * an attempt.
 */
export type CircuitState =
  | { state: 'closed'; retryAtMs?: undefined }
  | { state: 'half_open'; retryAtMs?: undefined }
  | { state: 'open'; retryAtMs: number };

// Keys per host (hash-tagged by host): state hash {retryAt, pauseMs} present only while open;
// failures sorted set (member unique, score time) while closed; probe lock (SET NX PX).
// The scripts: src/redis/lua/circuitState-2.lua and circuitFailure-3.lua.

export interface HostCircuitOptions {
  /** Key prefix; keys are `${prefix}:circuit:{host}:state|failures|probe`. */
  prefix: string;
  /** Failures older than this do not count. Default 10 min. */
  failureWindowMs?: number;
  /** Failures within the window, with no success since the first, that open the circuit. Default 20. */
  minFailures?: number;
  /** First pause once open; doubles on every failed probe. Default 60 s. */
  openMs?: number;
  /** Cap of the doubling pause. Default 30 min. */
  maxOpenMs?: number;
  /**
   * How long a won probe keeps others out when its outcome is never reported (the prober crashed
   * or recorded neither success nor failure). Pick it above the longest attempt. Default `openMs`.
   */
  probeLeaseMs?: number;
}

/**
 * A per-host circuit breaker shared by all processes (state in Redis, judged by Redis server
 * time). Opens after `minFailures` counted failures within `failureWindowMs` with no success since
 * the first of them; while open callers wait instead of attempting; once the pause is over exactly
 * one caller (across processes) is let through as a probe; its success closes the circuit, its
 * failure re-opens it with a doubled pause (up to `maxOpenMs`). Any recorded success closes it.
 */
export class HostCircuit {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #failureWindowMs: number;
  readonly #minFailures: number;
  readonly #openMs: number;
  readonly #maxOpenMs: number;
  readonly #probeLeaseMs: number;

  constructor(redis: Redis, options: HostCircuitOptions) {
    this.#redis = redis;
    this.#prefix = options.prefix;
    this.#failureWindowMs = requirePositiveInt('failureWindowMs', options.failureWindowMs ?? 10 * 60_000);
    this.#minFailures = requirePositiveInt('minFailures', options.minFailures ?? 20);
    this.#openMs = requirePositiveInt('openMs', options.openMs ?? 60_000);
    this.#maxOpenMs = requirePositiveInt('maxOpenMs', options.maxOpenMs ?? 30 * 60_000);
    if (this.#maxOpenMs < this.#openMs) throw new RangeError('maxOpenMs must be at least openMs');
    this.#probeLeaseMs = requirePositiveInt('probeLeaseMs', options.probeLeaseMs ?? this.#openMs);
  }

  /** The Redis keys for `host` (hash-tagged by host, so each script stays in one Cluster slot). */
  keys(host: string): { state: string; failures: string; probe: string } {
    const base = `${this.#prefix}:circuit:{${host}}`;
    return { state: `${base}:state`, failures: `${base}:failures`, probe: `${base}:probe` };
  }

  /**
   * Whether to attempt a delivery to `host` now. Not a pure read: once the pause is over, the one
   * caller that gets `half_open` has claimed the probe, so call this right before attempting and
   * report the outcome with `recordSuccess` / `recordFailure`.
   */
  async state(host: string): Promise<CircuitState> {
    const { state, probe } = this.keys(host);
    const token = randomBytes(12).toString('base64url');
    return parseState(await scripts.circuitState.run(this.#redis, [state, probe], [token, this.#probeLeaseMs]));
  }

  /** The host answered: closes the circuit and forgets counted failures. */
  async recordSuccess(host: string): Promise<void> {
    const { state, failures, probe } = this.keys(host);
    await this.#redis.del(state, failures, probe);
  }

  /**
   * A failure that counts (timeout, network error, 5xx — the caller decides). Ignored while open;
   * in half-open (the probe failed) re-opens with a doubled pause. Returns the resulting state.
   */
  async recordFailure(host: string): Promise<CircuitState> {
    const { state, failures, probe } = this.keys(host);
    const member = randomBytes(6).toString('base64url');
    return parseState(
      await scripts.circuitFailure.run(
        this.#redis,
        [state, failures, probe],
        [
          member,
          this.#failureWindowMs,
          this.#minFailures,
          this.#openMs,
          this.#maxOpenMs,
          this.#maxOpenMs + this.#probeLeaseMs,
        ],
      ),
    );
  }
}

function parseState(reply: unknown): CircuitState {
  if (!Array.isArray(reply)) throw new TypeError(`unexpected circuit reply: ${String(reply)}`);
  const [state, retryAt] = reply as [unknown, unknown];
  if (state === 'closed' || state === 'half_open') return { state };
  if (state === 'open' && typeof retryAt === 'number') return { state, retryAtMs: retryAt };
  throw new TypeError(`unexpected circuit reply: ${JSON.stringify(reply)}`);
}
