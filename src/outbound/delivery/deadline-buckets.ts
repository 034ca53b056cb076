/** Something that gives up when its deadline passes. */
export interface Expiring {
  expire(): void;
}

/** The operations watched within one slice of time, with their one timer. */
export class DeadlineBucket {
  private readonly members = new Set<Expiring>();
  private readonly timer: NodeJS.Timeout;

  constructor(delayMs: number, private readonly onEmpty: () => void) {
    this.timer = setTimeout(() => {
      this.onEmpty();
      for (const member of this.members) member.expire();
      this.members.clear();
    }, delayMs);
    // Whatever is being watched keeps the process alive on its own (a socket, say).
    this.timer.unref();
  }

  add(member: Expiring): void {
    this.members.add(member);
  }

  /** `member` ended in time; the timer goes with the bucket's last member. */
  leave(member: Expiring): void {
    if (!this.members.delete(member) || this.members.size > 0) return;
    clearTimeout(this.timer);
    this.onEmpty();
  }
}

/**
 * Deadlines for many short operations with one timer per `granularityMs` instead of one each:
 * operations watched within the same slice of time share a bucket and its timer, so each gets
 * between its timeout and `granularityMs` more. One that ends in time leaves its bucket (a Set
 * deletion), far cheaper than a timer or an AbortSignal listener of its own.
 */
export class DeadlineBuckets {
  private readonly buckets = new Map<string, DeadlineBucket>();

  constructor(private readonly granularityMs = 100) {}

  /** `member.expire()` is called after `timeoutMs` (up to `granularityMs` later) unless it leaves the bucket first. */
  watch(member: Expiring, timeoutMs: number): DeadlineBucket {
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new RangeError('timeoutMs must be a positive number');
    const key = `${timeoutMs}:${Math.floor(performance.now() / this.granularityMs)}`;
    let bucket = this.buckets.get(key);
    if (!bucket) {
      const created = new DeadlineBucket(timeoutMs + this.granularityMs, () => {
        if (this.buckets.get(key) === created) this.buckets.delete(key);
      });
      bucket = created;
      this.buckets.set(key, bucket);
    }
    bucket.add(member);
    return bucket;
  }
}
