const MAX_TIMER_MS = 2 ** 31 - 1;

/** Something that gives up when its deadline passes. */
export interface Expiring {
  expire(): void;
}

/** The operations watched within one slice of time, with their one timer. */
export class DeadlineBucket {
  private readonly members = new Set<Expiring>();

  /** `onDue` runs first when the timer fires (the bucket then takes no one new). */
  constructor(delayMs: number, onDue: () => void) {
    const timer = setTimeout(() => {
      onDue();
      for (const member of this.members) {
        try {
          member.expire();
        } catch {
          // One member's failure must not keep the others from their deadline.
        }
      }
      this.members.clear();
    }, delayMs);
    // Whatever is being watched keeps the process alive on its own (a socket, say).
    timer.unref();
  }

  add(member: Expiring): void {
    this.members.add(member);
  }

  /**
   * `member` ended in time. An emptied bucket keeps its timer (unref'd, it fires on nobody) and
   * takes new members of its slice: at low load that spares a timer per operation.
   */
  leave(member: Expiring): void {
    this.members.delete(member);
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
    // Beyond the longest delay a timer takes (about 24.8 days) it would fire at once.
    timeoutMs = Math.min(timeoutMs, MAX_TIMER_MS - this.granularityMs);
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
