import { Redis, type RedisOptions } from 'ioredis';

/**
 * Where Redis is: its URL, and whether a `rediss://` server's certificate must be trusted. Managed
 * Redis (Heroku) serves TLS with a self-signed certificate, so checking it is a setting. A bare URL
 * means the certificate is checked.
 */
export type RedisTarget = string | { url: string; tlsRejectUnauthorized: boolean };

/** The target the configuration names (REDIS_URL, REDIS_TLS_REJECT_UNAUTHORIZED). */
export function redisTarget(config: { redisUrl: string; redisTlsRejectUnauthorized: boolean }): RedisTarget {
  return { url: config.redisUrl, tlsRejectUnauthorized: config.redisTlsRejectUnauthorized };
}

/**
 * The URL and the options every connection to `target` needs: ioredis speaks TLS for `rediss://`
 * on its own, and is told here whether to check the certificate. A `redis://` URL stays plain.
 */
function redisConnectionOptions(target: RedisTarget): { url: string; options: RedisOptions } {
  if (typeof target === 'string') return { url: target, options: {} };
  const tls = /^rediss:/i.test(target.url) && !target.tlsRejectUnauthorized;
  return { url: target.url, options: tls ? { tls: { rejectUnauthorized: false } } : {} };
}

/** A plain client for `target` (scripts, tests, maintenance): ioredis' defaults otherwise. */
export function createRedisClient(target: RedisTarget, options: RedisOptions = {}): Redis {
  const { url, options: tls } = redisConnectionOptions(target);
  return new Redis(url, { ...tls, ...options });
}

/**
 * A connection for producers (the web tier): commands fail at once while Redis is unreachable, so
 * a postback is answered 503 instead of hanging.
 */
export function createProducerConnection(target: RedisTarget, connectionName?: string): Redis {
  return createRedisClient(target, {
    connectionName,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 1_000,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
  });
}

/** A connection for workers and subscribers: blocking commands, retried for as long as it takes. */
export function createWorkerConnection(target: RedisTarget, connectionName?: string): Redis {
  return createRedisClient(target, {
    connectionName,
    maxRetriesPerRequest: null,
    retryStrategy: (attempt) => Math.min(attempt * 200, 5_000),
  });
}
