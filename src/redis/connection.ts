import { Redis, type RedisOptions } from 'ioredis';

/**
 * A connection for producers (the web tier): commands fail at once while Redis is unreachable, so
 * a postback is answered 503 instead of hanging.
 */
export function createProducerConnection(redisUrl: string, connectionName?: string): Redis {
  return new Redis(redisUrl, {
    connectionName,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 1_000,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
  } satisfies RedisOptions);
}

/** A connection for workers and subscribers: blocking commands, retried for as long as it takes. */
export function createWorkerConnection(redisUrl: string, connectionName?: string): Redis {
  return new Redis(redisUrl, {
    connectionName,
    maxRetriesPerRequest: null,
    retryStrategy: (attempt) => Math.min(attempt * 200, 5_000),
  } satisfies RedisOptions);
}
