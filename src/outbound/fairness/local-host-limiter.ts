import { requirePositiveInt } from './require-positive-int.js';

interface Waiter {
  since: number;
  maxWaitMs: number;
  settle(granted: boolean): void;
}

/** A first-in-first-out line that takes from its head cheaply. */
class Line {
  private items: Waiter[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(waiter: Waiter): void {
    this.items.push(waiter);
  }

  /** Takes out those who waited their longest by `now`, and returns them. */
  expire(now: number): Waiter[] {
    const expired: Waiter[] = [];
    const kept: Waiter[] = [];
    for (let i = this.head; i < this.items.length; i++) {
      const waiter = this.items[i]!;
      (now - waiter.since >= waiter.maxWaitMs ? expired : kept).push(waiter);
    }
    if (expired.length > 0) {
      this.items = kept;
      this.head = 0;
    }
    return expired;
  }

  shift(): Waiter | undefined {
    const waiter = this.items[this.head];
    if (waiter === undefined) return undefined;
    this.items[this.head++] = undefined as unknown as Waiter;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return waiter;
  }
}

const EXPIRY_CHECK_MS = 100;

/**
 * A per-process cap on deliveries to one host, so that a slow or dead host never holds more than
 * its share of a worker's delivery concurrency and healthy hosts keep theirs.
 */
export class LocalHostLimiter {
  readonly #maxPerHost: number;
  readonly #inUse = new Map<string, number>();
  readonly #waiting = new Map<string, Line>();
  #expiry: NodeJS.Timeout | null = null;

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

  /**
   * Takes a slot for `host`, waiting in line about `maxWaitMs` at most (checked every 100 ms) for
   * one to be given back; false when none came in time (the host is slow: its deliveries should
   * wait elsewhere than in memory).
   */
  acquire(host: string, maxWaitMs: number): Promise<boolean> | boolean {
    if (this.tryAcquire(host)) return true;
    return new Promise<boolean>((resolve) => {
      let line = this.#waiting.get(host);
      if (!line) {
        line = new Line();
        this.#waiting.set(host, line);
      }
      line.push({ since: Date.now(), maxWaitMs, settle: resolve });
      this.#expireLater();
    });
  }

  /** Gives back one slot taken by `tryAcquire` or `acquire` (to the first in line, if any); extra releases are ignored. */
  release(host: string): void {
    const used = this.#inUse.get(host) ?? 0;
    if (used === 0) return;
    const line = this.#waiting.get(host);
    const next = line?.shift();
    if (line && line.length === 0) this.#waiting.delete(host);
    if (next) {
      // The slot passes to the first in line.
      next.settle(true);
      return;
    }
    if (used === 1) this.#inUse.delete(host);
    else this.#inUse.set(host, used - 1);
  }

  inUse(host: string): number {
    return this.#inUse.get(host) ?? 0;
  }

  /** Whether `tryAcquire` would refuse now (a cheap look before any I/O). */
  isFull(host: string): boolean {
    return this.inUse(host) >= this.#maxPerHost;
  }

  /** One timer for every line: sends away those who waited too long. */
  #expireLater(): void {
    if (this.#expiry) return;
    this.#expiry = setInterval(() => {
      const now = Date.now();
      for (const [host, line] of this.#waiting) {
        for (const waiter of line.expire(now)) waiter.settle(false);
        if (line.length === 0) this.#waiting.delete(host);
      }
      if (this.#waiting.size === 0 && this.#expiry) {
        clearInterval(this.#expiry);
        this.#expiry = null;
      }
    }, EXPIRY_CHECK_MS);
    this.#expiry.unref();
  }
}
