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

/**
 * Ends `connection` before the BullMQ queues and workers that share it are closed, unless it is
 * ready. Each of them waits for the connection to become ready and fails that wait when the
 * connection ends; closed first, they no longer listen for the failure, and it surfaces as an
 * unhandled rejection (which stops a Node process). So a connection caught mid-connect is ended
 * here and its end awaited (up to `timeoutMs`) while they still listen. A ready connection is left
 * as it is: their waits are over, and closing workers may still need it.
 */
export async function endUnlessReady(connection: Redis, timeoutMs = 3_000): Promise<void> {
  const status = connection.status;
  if (status === 'ready' || status === 'end') return;
  // Between attempts there is no socket: ending it emits nothing, and nothing is waiting on a result.
  const midConnect = status === 'connecting' || status === 'connect';
  let timer: NodeJS.Timeout | undefined;
  const ended = new Promise<void>((resolve) => {
    connection.once('end', resolve);
    timer = setTimeout(resolve, midConnect ? timeoutMs : 0);
  });
  connection.disconnect();
  await ended;
  clearTimeout(timer);
  // Their waits fail a few promise steps after the end (later on a busy machine): let those run
  // before anything is closed.
  for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setTimeout(resolve, 20));
}
