import { once } from 'node:events';
import http from 'node:http';
import type { Server } from 'node:http';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Knex } from 'knex';
import type { Config } from '../config/env.js';
import { createWebApp } from './app.js';
import { endEventStreams } from '../console/event-stream.js';
import { gracefulCloser } from './graceful-close.js';
import { PostbackViewCache } from './postback-view-cache.js';
import { CampaignLinkCache } from './routes/clicks.js';
import { TelegramBotView } from './routes/telegram.js';
import { RateLimiter } from './rate-limiter.js';
import type { DialogUpdateJob } from '../jobs/dialog-update-job.js';
import { DIALOG_RUN_JOB_OPTIONS, DRAIN_JOB, type DialogRunJob } from '../jobs/dialog-run-job.js';
import type { OutboundDeliveryJob } from '../jobs/outbound-delivery-job.js';
import { requeueRecordedDelivery } from '../outbound/enqueue.js';
import { QUEUES } from '../jobs/queue-names.js';
import type { Logger } from '../config/log.js';
import { publishInvalidation, subscribeInvalidations, type Invalidation } from '../redis/invalidation.js';
import { createProducerConnection, endUnlessReady, redisTarget } from '../redis/connection.js';
import { SequenceFloor } from '../redis/sequence-floor.js';
import { queueDashboard } from '../observability/queue-dashboard.js';
import { checkReadiness, postgresCheck, redisCheck, workersCheck, type Check } from '../observability/readiness.js';
import { addPoolSource, addQueueSource } from '../observability/sources.js';
import { highestSequence } from '../db/dialog-inputs.js';
import { DialogUpdateQueue } from '../jobs/dialog-update-queue.js';
import { queueBroadcastRun, type BroadcastJob } from '../jobs/broadcast-job.js';
import { ensureQueueReachable, queueUnavailable } from './queue-unavailable.js';

export interface WebTierOptions {
  /**
   * The queues whose worker in this process is paused on a Postgres outage (the all-in-one
   * process): /readyz then answers 503 naming them.
   */
  pausedQueues?: () => string[];
}

export interface WebTier {
  server: Server;
  port: number;
  close(): Promise<void>;
}

/**
 * Waits until the queue's Redis connection is up, the first connection error, or `timeoutMs`:
 * a fresh process then takes traffic without answering 503 in its first moments (and is not closed
 * while BullMQ still checks the connection), yet still starts while Redis is down.
 */
async function queueReadyOrUnreachable(queue: Queue, redis: Redis, timeoutMs: number): Promise<void> {
  let settle = (): void => undefined;
  const failedOrLate = new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    settle = () => {
      clearTimeout(timer);
      redis.off('error', settle);
      resolve();
    };
    redis.once('error', settle);
  });
  await Promise.race([
    queue.waitUntilReady().then(
      () => undefined,
      () => undefined,
    ),
    failedOrLate,
  ]);
  settle();
}

/** Starts the web tier on `config.port` (0 picks a free port). */
export async function startWebTier(
  config: Config,
  db: Knex,
  log: Logger,
  options: WebTierOptions = {},
): Promise<WebTier> {
  const redis = createProducerConnection(redisTarget(config), `${config.queuePrefix}:web`);
  redis.on('error', (error) => log.debug({ err: error }, 'redis connection error'));
  const queue = new Queue<DialogUpdateJob>(QUEUES.dialogUpdates, { connection: redis, prefix: config.queuePrefix });
  queue.on('error', (error) => log.debug({ err: error }, 'queue error'));

  const sequenceFloor = SequenceFloor.forQueue(config.queuePrefix, QUEUES.dialogUpdates, () => highestSequence(db));
  sequenceFloor.restoreOnReconnect(redis, (error) =>
    log.warn({ err: error }, 'could not restore the update order counter'),
  );
  const updates = new DialogUpdateQueue(queue, redis, sequenceFloor);

  const views = new PostbackViewCache(db);
  const telegramBots = new TelegramBotView(db);
  const forget = (message: Invalidation): void => {
    views.invalidate(message);
    if (message.kind === 'bot') telegramBots.forget(message.id);
  };
  const subscription = subscribeInvalidations(redisTarget(config), config.queuePrefix, log, {
    onMessage: forget,
    onReset: () => {
      views.clear();
      telegramBots.clear();
    },
  });
  const invalidate = async (message: Invalidation): Promise<void> => {
    forget(message);
    await publishInvalidation(redis, config.queuePrefix, message).catch((error: unknown) =>
      log.warn(
        { err: error, message },
        'could not publish a cache invalidation; other web processes expire it within a minute',
      ),
    );
  };

  const campaignLinks = new CampaignLinkCache(db);

  const outbound = new Queue<OutboundDeliveryJob>(QUEUES.outboundWebhooks, {
    connection: redis,
    prefix: config.queuePrefix,
  });
  const stepRuns = new Queue<DialogRunJob>(QUEUES.stepRuns, { connection: redis, prefix: config.queuePrefix });
  // Only the queue dashboard uses it: batches are queued by workers.
  const outboundBatches = new Queue(QUEUES.outboundBatches, { connection: redis, prefix: config.queuePrefix });
  const broadcasts = new Queue<BroadcastJob>(QUEUES.broadcasts, { connection: redis, prefix: config.queuePrefix });
  for (const q of [stepRuns, outbound, outboundBatches, broadcasts])
    q.on('error', (error) => log.debug({ err: error }, 'queue error'));

  // Queue figures are read here at scrape time, so /metrics shows the queues of worker-only processes too.
  const removeSources = [addQueueSource(config.queuePrefix, redis), addPoolSource(db)];
  const readinessChecks: Record<string, Check> = { postgres: postgresCheck(db), redis: redisCheck(redis) };
  if (options.pausedQueues) readinessChecks.workers = workersCheck(options.pausedQueues);

  const app = createWebApp({
    log: log.child({ component: 'http' }),
    adminApiKey: config.adminApiKey,
    metricsToken: config.metricsToken,
    queueDashboard: queueDashboard([queue, stepRuns, outbound, outboundBatches, broadcasts]),
    telegram: { log, queue: updates, bots: telegramBots },
    postback: {
      db,
      queue: updates,
      redis,
      queuePrefix: config.queuePrefix,
      views,
      rateLimiter: new RateLimiter(),
      defaultRateLimit: config.postbackRateLimit,
    },
    management: {
      db,
      publicUrl: config.publicUrl,
      telegramApiRoot: config.telegramApiRoot,
      outboundAllowCidrs: config.outboundAllowCidrs,
      invalidate,
      forgetCampaign: (id) => campaignLinks.forget(id),
      queueDialogInput: async (job) => {
        ensureQueueReachable(redis);
        return updates.add(job).catch(queueUnavailable);
      },
      queueBroadcast: (id, delayMs) => queueBroadcastRun(broadcasts, id, delayMs),
      wakeDialog: async (botId, chatId) => {
        await stepRuns.add(
          DRAIN_JOB,
          { botId, chatId },
          { ...DIALOG_RUN_JOB_OPTIONS, jobId: `revive-${botId}-${chatId}-${Date.now()}` },
        );
      },
      replayDelivery: (d) => requeueRecordedDelivery(outbound, d),
    },
    clicks: { db, links: campaignLinks },
    console: { redis, queuePrefix: config.queuePrefix },
    readiness: () => checkReadiness(readinessChecks),
  });

  await queueReadyOrUnreachable(queue, redis, 2_000);
  // Before the first input is accepted: the order counter restarts above what Postgres has applied.
  await sequenceFloor
    .restore(redis)
    .catch((error: unknown) => log.warn({ err: error }, 'could not restore the update order counter'));
  // Room for a 64 KiB postback query string in the request line (Node's default is 16 KiB).
  const handleRequest = app.callback();
  // Koa answers its own errors (ctx.onerror), so the request's promise has nothing left to handle.
  const server = http.createServer(
    { maxHeaderSize: 80 * 1024 },
    (request, response) => void handleRequest(request, response),
  );
  server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
    if (!socket.writable) return socket.destroy();
    const status = error.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
    const body = JSON.stringify({
      ok: false,
      error: {
        code: status === 431 ? 'request_too_large' : 'bad_request',
        message: 'malformed or oversized HTTP request',
      },
    });
    socket.end(
      `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  });
  const closeServer = gracefulCloser(server);
  server.listen(config.port, '0.0.0.0');
  await once(server, 'listening');
  server.keepAliveTimeout = 65_000;
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  log.info({ port }, 'web tier listening');

  return {
    server,
    port,
    close: async () => {
      // The console's live transcripts stay open as long as their pages: ended first, they never hold up the drain.
      endEventStreams(app);
      await closeServer();
      for (const remove of removeSources) remove();
      await subscription.close();
      await endUnlessReady(redis);
      await queue.close();
      await outbound.close();
      await stepRuns.close();
      await outboundBatches.close();
      await broadcasts.close();
      redis.disconnect();
    },
  };
}
