import { randomUUID } from 'node:crypto';
import { Queue, type Worker } from 'bullmq';
import type { Knex } from 'knex';
import type { Config } from '../config/env.js';
import { listTelegramBots } from '../db/bots.js';
import { DecisionRecorder, highestSequence } from '../db/dialog-inputs.js';
import { InputProgressWriter } from '../db/input-progress.js';
import { DIALOG_RUN_JOB_OPTIONS, DRAIN_JOB, drainJobId, type DialogRunJob } from '../jobs/dialog-run-job.js';
import type { DialogUpdateJob } from '../jobs/dialog-update-job.js';
import { journalTimer } from '../jobs/run-dialog.js';
import type { OutboundBatchJob, OutboundDeliveryJob } from '../jobs/outbound-delivery-job.js';
import { QUEUES } from '../jobs/queue-names.js';
import type { Logger } from '../config/log.js';
import { startDeliveryConsumer } from './deliveries-consumer.js';
import { DeliveryRecorder } from '../outbound/delivery-recorder.js';
import { startStrandedSweeper } from './stranded-deliveries-sweeper.js';
import { createGuardedAgent } from '../outbound/delivery/index.js';
import { HostCircuit, LocalHostLimiter } from '../outbound/fairness/index.js';
import { USER_AGENT } from '../version.js';
import { createWorkerConnection } from '../redis/connection.js';
import { DialogLease } from '../redis/dialog-lease.js';
import { DialogUpdateQueue } from '../jobs/dialog-update-queue.js';
import { subscribeInvalidations } from '../redis/invalidation.js';
import { SequenceFloor } from '../redis/sequence-floor.js';
import { BotCache } from '../runner/bot-cache.js';
import { DialogDrainer } from '../runner/dialog-drainer.js';
import { InlineDrains } from '../runner/inline-drains.js';
import { startDialogSweeper } from './dialog-sweeper.js';
import { BotRegistry, parseBotInfo, SendLimiter, startPollers, TelegramSender, usesWebhook, type Pollers } from '../telegram/index.js';
import { telegramUpdateJob } from '../telegram/update-job.js';
import { startDialogRunsConsumer } from './dialog-runs-consumer.js';
import { startDialogUpdatesConsumer } from './dialog-updates-consumer.js';

export interface WorkerTier {
  workers: Worker[];
  /** Re-arms from Postgres what Redis lost, now (it also runs on its own interval). */
  sweepOnce(): Promise<void>;
  close(): Promise<void>;
}

export interface WorkerTierOptions {
  /** Long-poll bots when PUBLIC_URL is not https (default true). */
  poll?: boolean;
  /** How often Postgres is swept for inputs and delays Redis lost (default 10 s), and when an open input counts as lost (default 15 s). */
  sweepIntervalMs?: number;
  staleInputMs?: number;
  /** Tries of one dialog input before it is set aside as dead (default 8). */
  maxInputAttempts?: number;
}

/** Starts every queue consumer of a worker process, and the Telegram pollers when bots are polled. */
export async function startWorkerTier(config: Config, db: Knex, log: Logger, options: WorkerTierOptions = {}): Promise<WorkerTier> {
  const connection = createWorkerConnection(config.redisUrl, `${config.queuePrefix}:worker`);
  connection.on('error', (error) => log.debug({ err: error }, 'redis connection error'));
  const prefix = config.queuePrefix;

  const stepRuns = new Queue<DialogRunJob>(QUEUES.stepRuns, { connection, prefix });
  const dialogUpdatesQueue = new Queue<DialogUpdateJob>(QUEUES.dialogUpdates, { connection, prefix });
  const outbound = new Queue<OutboundDeliveryJob>(QUEUES.outboundWebhooks, { connection, prefix });
  const outboundBatches = new Queue<OutboundBatchJob>(QUEUES.outboundBatches, { connection, prefix });
  const deliveries = new DeliveryRecorder(db, { chains: outbound, batches: outboundBatches });
  const registry = new BotRegistry({ apiRoot: config.telegramApiRoot });
  const limiter = new SendLimiter(connection, { prefix, limits: { botPerSecond: config.telegramBotRateLimit, chatPerSecond: config.telegramChatRateLimit } });
  const sender = new TelegramSender({ registry, limiter, log: log.child({ component: 'telegram' }) });
  const outboundAgent = createGuardedAgent({
    allowCidrs: config.outboundAllowCidrs,
    connectTimeoutMs: Math.min(config.outboundTimeoutMs, 10_000),
    agentOptions: { connections: config.outboundMaxPerHost, keepAliveTimeout: 10_000 },
  });

  // One order for every input of a dialog: restored above Postgres' highest before any is drawn.
  const floor = SequenceFloor.forQueue(prefix, QUEUES.dialogUpdates, () => highestSequence(db));
  floor.restoreOnReconnect(connection, (error) => log.warn({ err: error }, 'could not restore the update order counter'));
  await floor.restore(connection).catch((error: unknown) => log.warn({ err: error }, 'could not restore the update order counter'));
  const updates = new DialogUpdateQueue(dialogUpdatesQueue, connection, floor);

  const bots = new BotCache(db);
  const invalidations = subscribeInvalidations(config.redisUrl, prefix, log, {
    onMessage: (message) => {
      if (message.kind === 'bot') bots.invalidate(message.id);
    },
    onReset: () => bots.clear(),
  });
  const drainer = new DialogDrainer({
    db,
    log: log.child({ component: 'dialogs' }),
    lease: new DialogLease(connection, prefix),
    bots,
    registry,
    sender,
    timers: stepRuns,
    deliveries,
    progress: new InputProgressWriter(db),
    decisions: new DecisionRecorder(db),
    now: () => new Date(),
    ...(options.maxInputAttempts !== undefined ? { maxAttempts: options.maxInputAttempts } : {}),
  });
  const wake = async (botId: string, chatId: number, jobId: string, delayMs = 0): Promise<void> => {
    await stepRuns.add(DRAIN_JOB, { botId, chatId }, { ...DIALOG_RUN_JOB_OPTIONS, jobId, ...(delayMs > 0 ? { delay: delayMs } : {}) });
  };
  const inlineDrains = new InlineDrains({
    drain: (dialog, snapshot) => drainer.drain(dialog, snapshot),
    queue: (dialog, { delayMs }) => wake(dialog.botId, dialog.chatId, `wake-${dialog.botId}-${dialog.chatId}-${randomUUID()}`, delayMs),
    limit: config.workerConcurrency,
    log,
  });

  const dialogUpdates = startDialogUpdatesConsumer({
    db,
    connection,
    prefix,
    log: log.child({ queue: QUEUES.dialogUpdates }),
    concurrency: config.dialogUpdatesConcurrency,
    sequenceFloor: floor,
    requeue: (job) => updates.add(job),
    // An update that journaled an input (a move, a Telegram update) wakes its dialog, here and now.
    onApplied: async (applied) => {
      if (applied.journaled) await inlineDrains.wake({ botId: applied.botId, chatId: applied.chatId }, applied.snapshot);
    },
  });
  const workers: Worker[] = [
    dialogUpdates,
    startDialogRunsConsumer({
      db,
      redis: connection,
      floor,
      drainer,
      prefix,
      log: log.child({ queue: QUEUES.stepRuns }),
      concurrency: config.workerConcurrency,
    }),
    ...startDeliveryConsumer({
      db,
      chains: outbound,
      connection,
      prefix,
      log: log.child({ queue: QUEUES.outboundWebhooks }),
      concurrency: config.workerConcurrency,
      agent: outboundAgent,
      retrySchedule: config.outboundRetrySchedule,
      totalTimeoutMs: config.outboundTimeoutMs,
      userAgent: USER_AGENT,
      local: new LocalHostLimiter(config.outboundMaxPerHost),
      circuit: new HostCircuit(connection, { prefix }),
      lockDuration: config.queueLockMs,
      stalledInterval: Math.min(30_000, config.queueLockMs),
    }),
  ];
  await Promise.all(workers.map((worker) => worker.waitUntilReady()));
  const sweeper = startStrandedSweeper({ db, queue: outbound, recorder: deliveries, log: log.child({ component: 'outbound-sweeper' }) });
  const dialogSweeper = startDialogSweeper({
    db,
    log: log.child({ component: 'dialog-sweeper' }),
    drain: (dialog) => wake(dialog.botId, dialog.chatId, `sweep-${dialog.botId}-${dialog.chatId}-${randomUUID()}`),
    fire: async (dialog, timer) => {
      const seq = await journalTimer({ db, redis: connection, floor }, dialog, timer);
      await wake(dialog.botId, dialog.chatId, drainJobId(dialog.botId, dialog.chatId, seq));
    },
    ...(options.sweepIntervalMs !== undefined ? { intervalMs: options.sweepIntervalMs } : {}),
    ...(options.staleInputMs !== undefined ? { staleMs: options.staleInputMs } : {}),
  });

  let pollers: Pollers | null = null;
  if ((options.poll ?? true) && !usesWebhook(config.publicUrl)) {
    pollers = startPollers({
      redis: connection,
      prefix,
      apiRoot: config.telegramApiRoot,
      registry,
      log: log.child({ component: 'telegram-poller' }),
      pollTimeoutSeconds: config.telegramPollTimeoutSeconds,
      listBots: async () =>
        (await listTelegramBots(db)).flatMap((bot) => {
          const botInfo = parseBotInfo(bot.info);
          return botInfo ? [{ botId: bot.id, token: bot.token, botInfo }] : [];
        }),
      onUpdate: async (botId, update, bot) => {
        const job = telegramUpdateJob(botId, bot.token, update);
        if (job) await updates.add(job);
      },
    });
  }
  log.info({ queues: workers.map((w) => w.name), concurrency: config.workerConcurrency, polling: Boolean(pollers) }, 'workers running');
  return {
    workers,
    sweepOnce: () => dialogSweeper.sweepOnce(),
    close: async () => {
      sweeper.stop();
      dialogSweeper.stop();
      await pollers?.stop();
      await Promise.all(workers.map((worker) => worker.close()));
      await inlineDrains.close();
      await Promise.all([stepRuns.close(), dialogUpdatesQueue.close(), outbound.close(), outboundBatches.close()]);
      await invalidations.close();
      await outboundAgent.close();
      connection.disconnect();
    },
  };
}
