import type { Redis } from 'ioredis';
import { scripts } from './scripts.js';

/**
 * Every input of a dialog is ordered by one Redis counter: the `dialog-updates` queue's job id
 * counter (postbacks and Telegram updates get their order as BullMQ stores their job; a delay
 * firing draws from the same counter). Postgres is the source of truth: should Redis come back
 * empty (no AOF, a failover, FLUSHALL), the counter would restart at 1 and new inputs would look
 * older than those applied. So each process holds a floor, read from Postgres at start and raised
 * by every id it sees, and puts the counter back above it at start, whenever its connection
 * becomes ready again, and as soon as an id comes back at or below the floor.
 */
export class SequenceFloor {
  private highest = 0;

  constructor(
    private readonly counterKey: string,
    /** The highest order Postgres holds (read again at each restore). */
    private readonly fromDatabase?: () => Promise<number>,
  ) {}

  static forQueue(prefix: string, queueName: string, fromDatabase?: () => Promise<number>): SequenceFloor {
    return new SequenceFloor(`${prefix}:${queueName}:id`, fromDatabase);
  }

  private get markKey(): string {
    return `${this.counterKey}:reset-below`;
  }

  get floor(): number {
    return this.highest;
  }

  observe(id: string | number | undefined): void {
    const n = Number(id);
    if (n > this.highest) this.highest = n;
  }

  /** Whether an id just drawn is at or below what was seen before: the counter went back. */
  regressed(id: string | number | undefined): boolean {
    const n = Number(id);
    return Number.isFinite(n) && n <= this.highest;
  }

  /** Restores the floor on every reconnection of `redis` (call `restore` once at start as well). */
  restoreOnReconnect(redis: Redis, onError: (error: unknown) => void): void {
    redis.on('ready', () => {
      this.restore(redis).catch(onError);
    });
  }

  /** Puts the counter back above the floor (and above Postgres' highest order). Returns whether it was raised. */
  async restore(redis: Redis): Promise<boolean> {
    if (this.fromDatabase) this.observe(await this.fromDatabase());
    return (await this.raise(redis)).raised;
  }

  private async raise(redis: Redis): Promise<{ raised: boolean; mark: number }> {
    const reply = await scripts.raiseSequenceFloor.run(redis, [this.counterKey, this.markKey], [String(this.highest)]);
    const [raised, mark] = reply as [number, number];
    return { raised: raised === 1, mark: Number(mark) };
  }

  /**
   * Whether a job's order was drawn after Redis lost the counter and before it was raised again
   * (it must be queued again, above the floor). Asks Redis only for an order at or below this
   * process's floor; an order above it is always sound.
   */
  async drawnTooLow(redis: Redis, id: number): Promise<boolean> {
    if (id > this.highest) return false;
    const { mark } = await this.raise(redis);
    return id <= mark;
  }

  /** Draws the next order directly (a delay firing), never one at or below the floor. */
  async next(redis: Redis): Promise<number> {
    for (let attempt = 0; ; attempt++) {
      const id = await redis.incr(this.counterKey);
      if (!this.regressed(id) || attempt >= 2) {
        this.observe(id);
        return id;
      }
      await this.restore(redis);
    }
  }
}
