/**
 * Collects items submitted concurrently and hands them to `flush` in batches: while one batch is
 * being written, the next accumulates (group commit), so batches grow with the write latency and
 * a lone item is written at once.
 */
export class GroupCommit<I, O> {
  private pending: Array<{ item: I; resolve(value: O): void; reject(error: unknown): void }> = [];
  private running = 0;

  constructor(
    private readonly flush: (items: I[]) => Promise<O[]>,
    private readonly maxBatch = 1000,
    private readonly maxParallel = 1,
  ) {}

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      if (this.running < this.maxParallel) queueMicrotask(() => this.drain());
    });
  }

  private drain(): void {
    if (this.running >= this.maxParallel || this.pending.length === 0) return;
    const batch = this.pending.splice(0, this.maxBatch);
    this.running++;
    this.flush(batch.map((entry) => entry.item))
      .then(
        (results) => batch.forEach((entry, i) => entry.resolve(results[i]!)),
        (error: unknown) => batch.forEach((entry) => entry.reject(error)),
      )
      .finally(() => {
        this.running--;
        this.drain();
      });
  }
}
