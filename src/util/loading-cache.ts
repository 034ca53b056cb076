import { LruCache } from './lru-cache.js';

interface Entry<V> {
  value: Promise<V>;
  expires: number;
}

/**
 * An LRU of values loaded on demand and kept for a time: a pending load is shared by everyone
 * asking meanwhile (a burst for a cold key makes one read), a failed one is forgotten at once, and
 * a loaded one lives `ttlMs(value)` from when it arrived.
 */
export class LoadingCache<K, V> {
  private readonly entries: LruCache<K, Entry<V>>;

  constructor(
    capacity: number,
    private readonly ttlMs: (value: V) => number,
  ) {
    this.entries = new LruCache(capacity);
  }

  get(key: K, load: () => Promise<V>): Promise<V> {
    const hit = this.entries.get(key);
    if (hit && hit.expires > Date.now()) return hit.value;
    const entry: Entry<V> = { value: load(), expires: Number.POSITIVE_INFINITY };
    this.entries.set(key, entry);
    entry.value.then(
      (value) => {
        if (this.entries.get(key) === entry) entry.expires = Date.now() + this.ttlMs(value);
      },
      () => {
        if (this.entries.get(key) === entry) this.entries.delete(key);
      },
    );
    return entry.value;
  }

  delete(key: K): void {
    this.entries.delete(key);
  }

  clear(): void {
    this.entries.clear();
  }
}
