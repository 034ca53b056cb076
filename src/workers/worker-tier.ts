import { randomUUID } from 'node:crypto';
import { Queue, type Worker } from 'bullmq';
import type { Redis } from 'ioredis';
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
import { createWorkerConnection, endUnlessReady, redisTarget } from '../redis/connection.js';
import { DialogLease } from '../redis/dialog-lease.js';
import { DialogUpdateQueue } from '../jobs/dialog-update-queue.js';
import { subscribeInvalidations, type InvalidationSubscription } from '../redis/invalidation.js';
import { SequenceFloor } from '../redis/sequence-floor.js';
import { BotCache } from '../runner/bot-cache.js';
import { DialogDrainer } from '../runner/dialog-drainer.js';
import { InlineDrains } from '../runner/inline-drains.js';
import { startDialogSweeper, type DialogSweeper } from './dialog-sweeper.js';
import { startBroadcasts } from './broadcasts-consumer.js';
import type { BroadcastJob } from '../jobs/broadcast-job.js';
import { startRetentionSweeper, type RetentionSweeper, type RetentionSweeperOptions } from './retention-sweeper.js';
import {
  BotRegistry,
  parseBotInfo,
  SendLimiter,
  startPollers,
  TelegramSender,
  usesWebhook,
  type Pollers,
} from '../telegram/index.js';
import { telegramUpdateJob } from '../jobs/telegram-update-job.js';
import { startDialogRunsConsumer } from './dialog-runs-consumer.js';
import { startDialogUpdatesConsumer } from './dialog-updates-consumer.js';
import { instrumentWorkers } from '../observability/job-metrics.js';
import { addPoolSource } from '../observability/sources.js';
import { handoverTimings } from './worker-options.js';

export interface WorkerTier {
  workers: Worker[];
  /** Re-arms from Postgres what Redis lost, now (it also runs on its own interval). */
  sweepOnce(): Promise<void>;
  close(): Promise<void>;
}

export interface WorkerTierOptions {
  /** Long-poll bots when PUBLIC_URL is not https (default true). */
  poll?: boolean;
  /** How often Postgres is swept for inputs and delays Redis lost (default QUEUE_LOCK_MS / 2), and when an open input counts as lost (default QUEUE_LOCK_MS). */
  sweepIntervalMs?: number;
  staleInputMs?: number;
  /** Tries of one dialog input before it is set aside as dead (default 8). */
  maxInputAttempts?: number;
  /** Timings of the retention sweeper (default: hourly, first a minute after start). */
  retention?: Pick<
    RetentionSweeperOptions,
    'intervalMs' | 'firstRunDelayMs' | 'batchSize' | 'pauseMs' | 'maxBatchesPerRun' | 'catchUpMs'
  >;
}

/** The Redis connection, queues and senders every part of a worker process shares. */
interface Plumbing {
  connection: Redis;
  prefix: string;
  stepRuns: Queue<DialogRunJob>;
  dialogUpdates: Queue<DialogUpdateJob>;
  outbound: Queue<OutboundDeliveryJob>;
  outboundBatches: Queue<OutboundBatchJob>;
  deliveries: DeliveryRecorder;
  registry: BotRegistry;
  limiter: SendLimiter;
  sender: TelegramSender;
  broadcasts: Queue<BroadcastJob>;
  outboundAgent: ReturnType<typeof createGuardedAgent>;
}

function openPlumbing(config: Config, db: Knex, log: Logger): Plumbing {
  const connection = createWorkerConnection(redisTarget(config), `${config.queuePrefix}:worker`);
  connection.on('error', (error) => log.debug({ err: error }, 'redis connection error'));
  const prefix = config.queuePrefix;
  const outbound = new Queue<OutboundDeliveryJob>(QUEUES.outboundWebhooks, { connection, prefix });
  const outboundBatches = new Queue<OutboundBatchJob>(QUEUES.outboundBatches, { connection, prefix });
  const registry = new BotRegistry({ apiRoot: config.telegramApiRoot });
  const limiter = new SendLimiter(connection, {
    prefix,
    limits: { botPerSecond: config.telegramBotRateLimit, chatPerSecond: config.telegramChatRateLimit },
  });
  return {
    connection,
    prefix,
    stepRuns: new Queue<DialogRunJob>(QUEUES.stepRuns, { connection, prefix }),
    dialogUpdates: new Queue<DialogUpdateJob>(QUEUES.dialogUpdates, { connection, prefix }),
    outbound,
    outboundBatches,
    deliveries: new DeliveryRecorder(db, { chains: outbound, batches: outboundBatches }),
    registry,
    limiter,
    sender: new TelegramSender({ registry, limiter, log: log.child({ component: 'telegram' }) }),
    broadcasts: new Queue<BroadcastJob>(QUEUES.broadcasts, { connection, prefix }),
    outboundAgent: createGuardedAgent({
      allowCidrs: config.outboundAllowCidrs,
      connectTimeoutMs: Math.min(config.outboundTimeoutMs, 10_000),
      agentOptions: { connections: config.outboundMaxPerHost, keepAliveTimeout: 10_000 },
    }),
  };
}

/** One order for every input of a dialog: the counter is restored above Postgres' highest before any is drawn. */
async function restoreInputOrder(
  db: Knex,
  log: Logger,
  plumbing: Plumbing,
): Promise<{ floor: SequenceFloor; updates: DialogUpdateQueue }> {
  const { connection, prefix } = plumbing;
  const floor = SequenceFloor.forQueue(prefix, QUEUES.dialogUpdates, () => highestSequence(db));
  floor.restoreOnReconnect(connection, (error) =>
    log.warn({ err: error }, 'could not restore the update order counter'),
  );
  await floor
    .restore(connection)
    .catch((error: unknown) => log.warn({ err: error }, 'could not restore the update order counter'));
  return { floor, updates: new DialogUpdateQueue(plumbing.dialogUpdates, connection, floor) };
}

/** What handles a dialog's inputs: the bot cache (kept fresh by invalidations), the drainer, and the wake-ups. */
interface DialogRunner {
  bots: BotCache;
  drainer: DialogDrainer;
  inlineDrains: InlineDrains;
  invalidations: InvalidationSubscription;
  /** Queues a drain of the dialog (after `delayMs`) under `jobId`. */
  wake(botId: string, chatId: number, jobId: string, delayMs?: number): Promise<void>;
}

function startDialogRunner(
  config: Config,
  db: Knex,
  log: Logger,
  plumbing: Plumbing,
  options: WorkerTierOptions,
): DialogRunner {
  const { connection, prefix, stepRuns } = plumbing;
  const bots = new BotCache(db);
  const invalidations = subscribeInvalidations(redisTarget(config), prefix, log, {
    onMessage: (message) => {
      if (message.kind === 'bot') bots.invalidate(message.id);
    },
    onReset: () => bots.clear(),
  });
  const drainer = new DialogDrainer({
    db,
    log: log.child({ component: 'dialogs' }),
    lease: new DialogLease(connection, prefix, handoverTimings(config.queueLockMs).leaseTtlMs),
    bots,
    registry: plumbing.registry,
    sender: plumbing.sender,
    timers: stepRuns,
    deliveries: plumbing.deliveries,
    progress: new InputProgressWriter(db),
    decisions: new DecisionRecorder(db),
    now: () => new Date(),
    ...(options.maxInputAttempts !== undefined ? { maxAttempts: options.maxInputAttempts } : {}),
  });
  const wake = async (botId: string, chatId: number, jobId: string, delayMs = 0): Promise<void> => {
    await stepRuns.add(
      DRAIN_JOB,
      { botId, chatId },
      { ...DIALOG_RUN_JOB_OPTIONS, jobId, ...(delayMs > 0 ? { delay: delayMs } : {}) },
    );
  };
  const inlineDrains = new InlineDrains({
    drain: (dialog, snapshot) => drainer.drain(dialog, snapshot),
    queue: (dialog, { delayMs }) =>
      wake(dialog.botId, dialog.chatId, `wake-${dialog.botId}-${dialog.chatId}-${randomUUID()}`, delayMs),
    limit: config.workerConcurrency,
    log,
  });
  return { bots, drainer, inlineDrains, invalidations, wake };
}

/** The queue consumers: dialog updates, dialog runs (drains and delays), outbound webhooks. */
function startConsumers(
  config: Config,
  db: Knex,
  log: Logger,
  plumbing: Plumbing,
  order: { floor: SequenceFloor; updates: DialogUpdateQueue },
  runner: DialogRunner,
): Worker[] {
  const { connection, prefix } = plumbing;
  return [
    startDialogUpdatesConsumer({
      db,
      connection,
      prefix,
      log: log.child({ queue: QUEUES.dialogUpdates }),
      concurrency: config.dialogUpdatesConcurrency,
      sequenceFloor: order.floor,
      lockMs: config.queueLockMs,
      requeue: (job) => order.updates.add(job),
      // An update that journaled an input (a move, a Telegram update) wakes its dialog, here and now.
      onApplied: async (applied) => {
        if (applied.journaled)
          await runner.inlineDrains.wake({ botId: applied.botId, chatId: applied.chatId }, applied.snapshot);
      },
    }),
    startDialogRunsConsumer({
      db,
      redis: connection,
      floor: order.floor,
      drainer: runner.drainer,
      prefix,
      log: log.child({ queue: QUEUES.stepRuns }),
      concurrency: config.workerConcurrency,
      lockMs: config.queueLockMs,
    }),
    ...startDeliveryConsumer({
      db,
      chains: plumbing.outbound,
      connection,
      prefix,
      log: log.child({ queue: QUEUES.outboundWebhooks }),
      concurrency: config.workerConcurrency,
      agent: plumbing.outboundAgent,
      retrySchedule: config.outboundRetrySchedule,
      totalTimeoutMs: config.outboundTimeoutMs,
      userAgent: USER_AGENT,
      local: new LocalHostLimiter(config.outboundMaxPerHost),
      circuit: new HostCircuit(connection, { prefix }),
      lockMs: config.queueLockMs,
    }),
  ];
}

/** The sweepers that re-arm from Postgres what Redis lost: stranded deliveries, open inputs and delays. */
function startSweepers(
  config: Config,
  db: Knex,
  log: Logger,
  plumbing: Plumbing,
  floor: SequenceFloor,
  runner: DialogRunner,
  options: WorkerTierOptions,
): { stranded: { stop(): void }; dialogs: DialogSweeper; retention: RetentionSweeper } {
  const stranded = startStrandedSweeper({
    db,
    queue: plumbing.outbound,
    recorder: plumbing.deliveries,
    log: log.child({ component: 'outbound-sweeper' }),
  });
  const dialogs = startDialogSweeper({
    db,
    log: log.child({ component: 'dialog-sweeper' }),
    drain: (dialog) =>
      runner.wake(dialog.botId, dialog.chatId, `sweep-${dialog.botId}-${dialog.chatId}-${randomUUID()}`),
    fire: async (dialog, timer) => {
      const seq = await journalTimer({ db, redis: plumbing.connection, floor }, dialog, timer);
      await runner.wake(dialog.botId, dialog.chatId, drainJobId(dialog.botId, dialog.chatId, seq));
    },
    // A drain whose process died is noticed as soon as its lease could have expired.
    intervalMs: options.sweepIntervalMs ?? handoverTimings(config.queueLockMs).sweepIntervalMs,
    staleMs: options.staleInputMs ?? handoverTimings(config.queueLockMs).staleInputMs,
  });
  const retention = startRetentionSweeper({
    db,
    redis: plumbing.connection,
    prefix: plumbing.prefix,
    log: log.child({ component: 'retention' }),
    days: config.retention,
    queues: [plumbing.dialogUpdates, plumbing.stepRuns, plumbing.outbound, plumbing.outboundBatches],
    ...options.retention,
  });
  return { stranded, dialogs, retention };
}

/** Long-polls the bots that have a token, when PUBLIC_URL cannot take Telegram's webhook; null otherwise. */
function startTelegramPolling(
  config: Config,
  db: Knex,
  log: Logger,
  plumbing: Plumbing,
  updates: DialogUpdateQueue,
  options: WorkerTierOptions,
): Pollers | null {
  if (!(options.poll ?? true) || usesWebhook(config.publicUrl)) return null;
  return startPollers({
    redis: plumbing.connection,
    prefix: plumbing.prefix,
    apiRoot: config.telegramApiRoot,
    registry: plumbing.registry,
    log: log.child({ component: 'telegram-poller' }),
    pollTimeoutSeconds: config.telegramPollTimeoutSeconds,
    lockTtlMs: handoverTimings(config.queueLockMs).leaseTtlMs,
    rescanIntervalMs: Math.min(5_000, handoverTimings(config.queueLockMs).sweepIntervalMs),
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

/** Starts every queue consumer of a worker process, the sweepers, and the Telegram pollers when bots are polled. */
export async function startWorkerTier(
  config: Config,
  db: Knex,
  log: Logger,
  options: WorkerTierOptions = {},
): Promise<WorkerTier> {
  const plumbing = openPlumbing(config, db, log);
  const order = await restoreInputOrder(db, log, plumbing);
  const runner = startDialogRunner(config, db, log, plumbing, options);
  const workers = startConsumers(config, db, log, plumbing, order, runner);
  const broadcasts = startBroadcasts({
    db,
    connection: plumbing.connection,
    prefix: plumbing.prefix,
    log: log.child({ queue: QUEUES.broadcasts }),
    queue: plumbing.broadcasts,
    lockMs: config.queueLockMs,
    sweepIntervalMs: options.sweepIntervalMs ?? handoverTimings(config.queueLockMs).sweepIntervalMs,
    runner: {
      db,
      redis: plumbing.connection,
      prefix: plumbing.prefix,
      log: log.child({ component: 'broadcasts' }),
      limiter: plumbing.limiter,
      sender: plumbing.sender,
      bot: (botId) => runner.bots.get(botId),
      queueDialogInput: (job) => order.updates.add(job),
      leaseMs: handoverTimings(config.queueLockMs).leaseTtlMs,
    },
  });
  workers.push(broadcasts.worker);
  instrumentWorkers(workers, log);
  const removePoolSource = addPoolSource(db);
  await Promise.all(workers.map((worker) => worker.waitUntilReady()));
  const sweepers = startSweepers(config, db, log, plumbing, order.floor, runner, options);
  const pollers = startTelegramPolling(config, db, log, plumbing, order.updates, options);
  log.info(
    { queues: workers.map((w) => w.name), concurrency: config.workerConcurrency, polling: Boolean(pollers) },
    'workers running',
  );
  return {
    workers,
    sweepOnce: async () => {
      await sweepers.dialogs.sweepOnce();
      await broadcasts.sweepOnce();
    },
    close: async () => {
      broadcasts.stop();
      sweepers.stranded.stop();
      sweepers.dialogs.stop();
      await sweepers.retention.stop();
      await pollers?.stop();
      await endUnlessReady(plumbing.connection);
      await Promise.all(workers.map((worker) => worker.close()));
      await runner.inlineDrains.close();
      await Promise.all([
        plumbing.stepRuns.close(),
        plumbing.dialogUpdates.close(),
        plumbing.outbound.close(),
        plumbing.outboundBatches.close(),
        plumbing.broadcasts.close(),
      ]);
      await runner.invalidations.close();
      await plumbing.outboundAgent.close();
      plumbing.connection.disconnect();
      removePoolSource();
    },
  };
}
