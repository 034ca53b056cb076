/**
 * Bounds how long awaited calls may take without arming a timer per call: one sweep a tick
 * (`resolutionMs`) rejects every call past its deadline. Cheap enough for the postback hot path.
 */
export class DeadlineTracker {
  private readonly pending = new Set<{ at: number; reject(error: Error): void }>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly resolutionMs = 50) {}

  within<T>(promise: Promise<T>, ms: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const entry = { at: Date.now() + ms, reject };
      this.pending.add(entry);
      this.arm();
      promise.then(
        (value) => {
          this.pending.delete(entry);
          resolve(value);
        },
        (error: unknown) => {
          this.pending.delete(entry);
          // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- passes on the call's own rejection unchanged
          reject(error);
        },
      );
    });
  }

  private arm(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      const now = Date.now();
      for (const entry of this.pending) {
        if (entry.at <= now) {
          this.pending.delete(entry);
          entry.reject(new Error('deadline exceeded'));
        }
      }
      if (this.pending.size === 0 && this.timer) {
        clearInterval(this.timer);
        this.timer = null;
      }
    }, this.resolutionMs);
    this.timer.unref();
  }
}
