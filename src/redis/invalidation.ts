import type { Redis } from 'ioredis';
import type { Logger } from '../config/log.js';
import { createWorkerConnection, type RedisTarget } from './connection.js';

/** What changed, so that every web process drops its cached view of it. */
export type Invalidation = { kind: 'bot'; id: string } | { kind: 'endpoint'; id: string };

function invalidationChannel(prefix: string): string {
  return `${prefix}:invalidate`;
}

export async function publishInvalidation(redis: Redis, prefix: string, message: Invalidation): Promise<void> {
  await redis.publish(invalidationChannel(prefix), `${message.kind}:${message.id}`);
}

export interface InvalidationSubscription {
  close(): Promise<void>;
}

/**
 * Listens for invalidations. `onReset` runs on every (re)connection: messages may have been missed
 * while disconnected, so the whole cache must go.
 */
export function subscribeInvalidations(
  target: RedisTarget,
  prefix: string,
  log: Logger,
  handlers: { onMessage(message: Invalidation): void; onReset(): void },
): InvalidationSubscription {
  const redis = createWorkerConnection(target);
  const channel = invalidationChannel(prefix);
  redis.on('ready', () => {
    // Reset once subscribed: a message published between a reset and the subscription would be lost.
    redis
      .subscribe(channel)
      .catch((error: unknown) => log.warn({ err: error }, 'invalidation subscribe failed'))
      .finally(() => handlers.onReset());
  });
  redis.on('error', (error) => log.debug({ err: error }, 'invalidation connection error'));
  redis.on('message', (_channel: string, text: string) => {
    const colon = text.indexOf(':');
    const kind = text.slice(0, colon);
    if (kind === 'bot' || kind === 'endpoint') handlers.onMessage({ kind, id: text.slice(colon + 1) });
  });
  return {
    close: () => {
      redis.disconnect();
      return Promise.resolve();
    },
  };
}
