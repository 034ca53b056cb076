import type { Redis } from 'ioredis';

// Raises a BullMQ id counter to at least ARGV[1]; never lowers it.
const RAISE_COUNTER = `
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1])
  return 1
end
return 0`;

/**
 * Dialog updates are ordered by their BullMQ job id, which Redis draws from one counter per queue.
 * If Redis comes back empty (restarted without persistence), that counter would restart at 1 and
 * new updates would look older than ones already applied. Each process remembers the highest id it
 * has seen and, whenever its connection becomes ready again, raises the counter back above it.
 */
export class SequenceFloor {
  private highest = 0;

  constructor(
    private readonly counterKey: string,
  ) {}

  static forQueue(prefix: string, queueName: string): SequenceFloor {
    return new SequenceFloor(`${prefix}:${queueName}:id`);
  }

  observe(id: string | number | undefined): void {
    const n = Number(id);
    if (n > this.highest) this.highest = n;
  }

  /** Restores the floor now and on every reconnection of `redis`. */
  guard(redis: Redis, onError: (error: unknown) => void): void {
    redis.on('ready', () => {
      this.restore(redis).catch(onError);
    });
  }

  async restore(redis: Redis): Promise<boolean> {
    if (this.highest === 0) return false;
    return (await redis.eval(RAISE_COUNTER, 1, this.counterKey, String(this.highest))) === 1;
  }
}
