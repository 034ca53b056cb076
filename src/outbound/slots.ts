/** At most `limit` holders at once; the rest wait in line. */
export class Slots {
  private free: number;
  private readonly line: Array<() => void> = [];

  constructor(limit: number) {
    this.free = limit;
  }

  acquire(): Promise<void> | void {
    if (this.free > 0) {
      this.free--;
      return;
    }
    return new Promise<void>((resolve) => this.line.push(resolve));
  }

  /** Gives the slot to the first in line, if any. */
  release(): void {
    const next = this.line.shift();
    if (next) next();
    else this.free++;
  }
}
