import type { CircuitState, HostCircuit } from './fairness/index.js';
import { LruCache } from '../util/lru-cache.js';

/** Hosts whose circuit one process remembers at most. */
const CAPACITY = 10_000;

export const CLOSED: CircuitState = { state: 'closed' };

/**
 * This process's view of the shared circuit breaker: a closed circuit is trusted for a second
 * (the breaker opens only after many failures), and successes are reported at most once a second
 * per host unless they close a half-open circuit or follow a failure seen here.
 */
export class CircuitView {
  /** Until when each host's circuit is trusted closed (none: ask). */
  private readonly closedUntil = new LruCache<string, number>(CAPACITY);
  private readonly successReportedAt = new LruCache<string, number>(CAPACITY);
  private readonly failedHosts = new Set<string>();

  constructor(private readonly circuit: HostCircuit) {}

  /** The circuit was seen closed less than a second ago: no need to ask. */
  trustedClosed(host: string): boolean {
    return (this.closedUntil.get(host) ?? 0) > Date.now();
  }

  async state(host: string): Promise<CircuitState> {
    const now = Date.now();
    if ((this.closedUntil.get(host) ?? 0) > now) return CLOSED;
    const state = await this.circuit.state(host);
    if (state.state === 'closed') this.closedUntil.set(host, now + 1_000);
    else this.closedUntil.delete(host);
    return state;
  }

  /** Whether a success is to be reported: it closes a probe, follows a failure, or the last report is a second old. */
  successWorthReporting(host: string, probe: boolean): boolean {
    return probe || this.failedHosts.has(host) || Date.now() - (this.successReportedAt.get(host) ?? 0) >= 1_000;
  }

  async recordSuccess(host: string): Promise<void> {
    const now = Date.now();
    this.failedHosts.delete(host);
    this.successReportedAt.set(host, now);
    await this.circuit.recordSuccess(host);
  }

  async recordFailure(host: string): Promise<void> {
    this.failedHosts.add(host);
    this.closedUntil.delete(host);
    const state = await this.circuit.recordFailure(host);
    if (state.state !== 'closed') this.closedUntil.delete(host);
  }
}
