import { once } from 'node:events';
import type { Server } from 'node:http';
import { Queue } from 'bullmq';
import type { Knex } from 'knex';
import type { Config } from '../config/env.js';
import { createWebApp } from '../http/app.js';
import { PostbackViewCache } from '../http/postback-view-cache.js';
import { RateLimiter } from '../http/rate-limiter.js';
import type { DialogUpdateJob } from '../jobs/dialog-update-job.js';
import { QUEUES } from '../jobs/queue-names.js';
import type { Logger } from '../log.js';
import { publishInvalidation, subscribeInvalidations, type Invalidation } from '../queue/invalidation.js';
import { createProducerConnection } from '../queue/redis.js';

export interface WebTier {
  server: Server;
  port: number;
  close(): Promise<void>;
}

/** Starts the web tier on `config.port` (0 picks a free port). */
export async function startWebTier(config: Config, db: Knex, log: Logger): Promise<WebTier> {
  const redis = createProducerConnection(config.redisUrl);
  redis.on('error', (error) => log.debug({ err: error }, 'redis connection error'));
  const queue = new Queue<DialogUpdateJob>(QUEUES.dialogUpdates, { connection: redis, prefix: config.queuePrefix });
  queue.on('error', (error) => log.debug({ err: error }, 'queue error'));

  const views = new PostbackViewCache(db);
  const subscription = subscribeInvalidations(config.redisUrl, config.queuePrefix, log, {
    onMessage: (message) => views.invalidate(message),
    onReset: () => views.clear(),
  });
  const invalidate = async (message: Invalidation): Promise<void> => {
    views.invalidate(message);
    await publishInvalidation(redis, config.queuePrefix, message).catch((error: unknown) =>
      log.warn({ err: error, message }, 'could not publish a cache invalidation; other web processes expire it within a minute'),
    );
  };

  const app = createWebApp({
    log,
    adminApiKey: config.adminApiKey,
    postback: {
      queue,
      redis,
      queuePrefix: config.queuePrefix,
      views,
      rateLimiter: new RateLimiter(),
      defaultRateLimit: config.postbackRateLimit,
    },
    management: { db, publicUrl: config.publicUrl, invalidate },
    ready: async () => {
      await Promise.all([db.raw('SELECT 1'), redis.ping()]);
      return true;
    },
  });

  const server = app.listen(config.port, '0.0.0.0');
  await once(server, 'listening');
  server.keepAliveTimeout = 65_000;
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  log.info({ port }, 'web tier listening');

  return {
    server,
    port,
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      await subscription.close();
      await queue.close();
      redis.disconnect();
    },
  };
}
