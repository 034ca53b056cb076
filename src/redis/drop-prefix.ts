import { createRedisClient, type RedisTarget } from './connection.js';

/** Deletes every Redis key under a prefix (queues, counters, leases): for tests and benchmarks. */
export async function dropPrefix(target: RedisTarget, prefix: string): Promise<void> {
  const redis = createRedisClient(target);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 5000);
      if (keys.length) await redis.unlink(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}
