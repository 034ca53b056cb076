import { LruCache } from '../../util/lru-cache.js';

/**
 * How long attempts to each host have been taking in this process (a moving average), so that a
 * slow host's deliveries wait in Redis for longer instead of waking every second to find its slots
 * still taken, and are never held in a batch behind it.
 */
export class HostPace {
  // Hosts seen least recently are forgotten first.
  readonly #typicalMs = new LruCache<string, number>(10_000);

  constructor(private readonly slowMs = 1_000) {}

  observe(host: string, durationMs: number): void {
    const before = this.#typicalMs.get(host);
    this.#typicalMs.set(host, before === undefined ? durationMs : before * 0.8 + durationMs * 0.2);
  }

  /** The host's recent attempts take a second or more. */
  isSlow(host: string): boolean {
    return (this.#typicalMs.get(host) ?? 0) >= this.slowMs;
  }

  /**
   * How long a delivery finding the host's slots taken should wait: 0.5–2 s, stretched by how slow
   * the host has been (a 5 s host: 5–20 s), at most a minute.
   */
  busyDelayMs(host: string, random: () => number): number {
    const stretch = Math.max(1, (this.#typicalMs.get(host) ?? 0) / 500);
    return Math.min(60_000, (500 + random() * 1_500) * stretch);
  }
}
