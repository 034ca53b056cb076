import { LruCache } from '../util/lru-cache.js';

/**
 * Token buckets, one per key, in this process: `rate` requests a second with bursts of the same size.
 * Returns 0 when the request may pass, else the seconds to wait. Beyond `capacity` keys the least
 * recently used bucket is forgotten (it starts full again when its key comes back).
 */
export class RateLimiter {
  private readonly buckets: LruCache<string, { tokens: number; at: number }>;

  constructor(capacity = 100_000) {
    this.buckets = new LruCache(capacity);
  }

  take(key: string, rate: number, now = Date.now()): number {
    let bucket = this.buckets.get(key);
    if (!bucket) {
      this.buckets.set(key, (bucket = { tokens: rate, at: now }));
    } else {
      bucket.tokens = Math.min(rate, bucket.tokens + ((now - bucket.at) / 1000) * rate);
      bucket.at = now;
    }
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - bucket.tokens) / rate));
  }
}
