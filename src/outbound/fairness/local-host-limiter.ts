import { requirePositiveInt } from './lua.js';

/**
 * A per-process cap on deliveries to one host, so that a slow or dead host never holds more than
 * its share of a worker's delivery concurrency and healthy hosts keep theirs.
 */
export class LocalHostLimiter {
  readonly #maxPerHost: number;
  readonly #inUse = new Map<string, number>();

  constructor(maxPerHost: number) {
    this.#maxPerHost = requirePositiveInt('maxPerHost', maxPerHost);
  }

  /** Takes a slot for `host`; false when this process already has `maxPerHost` in flight. */
  tryAcquire(host: string): boolean {
    const used = this.#inUse.get(host) ?? 0;
    if (used >= this.#maxPerHost) return false;
    this.#inUse.set(host, used + 1);
    return true;
  }

  /** Gives back one slot taken by `tryAcquire`; extra releases are ignored. */
  release(host: string): void {
    const used = this.#inUse.get(host) ?? 0;
    if (used <= 1) this.#inUse.delete(host);
    else this.#inUse.set(host, used - 1);
  }

  inUse(host: string): number {
    return this.#inUse.get(host) ?? 0;
  }

  /** Whether `tryAcquire` would refuse now (a cheap look before any I/O). */
  isFull(host: string): boolean {
    return this.inUse(host) >= this.#maxPerHost;
  }
}
