import { Queue, type Worker } from 'bullmq';
import type { Update } from 'grammy/types';
import type { Knex } from 'knex';
import type { Config } from '../config/env.js';
import { DIALOG_EVENT_JOB_OPTIONS, STEP_RUN_JOB, type DialogEventJob } from '../jobs/dialog-event-job.js';
import { sequenceOf } from '../jobs/dialog-update-job.js';
import type { OutboundBatchJob, OutboundDeliveryJob } from '../jobs/outbound-delivery-job.js';
import { QUEUES } from '../jobs/queue-names.js';
import type { Logger } from '../log.js';
import { startDeliveryConsumer } from '../outbound/delivery-consumer.js';
import { DeliveryRecorder } from '../outbound/delivery-recorder.js';
import { startStrandedSweeper } from '../outbound/stranded-sweeper.js';
import { createGuardedAgent } from '../outbound/delivery/index.js';
import { HostCircuit, LocalHostLimiter } from '../outbound/fairness/index.js';
import { USER_AGENT } from '../version.js';
import { createWorkerConnection } from '../queue/redis.js';
import { acceptTelegramUpdate } from '../runner/accept-telegram-update.js';
import { DialogInbox } from '../runner/dialog-inbox.js';
import { DialogRunner } from '../runner/dialog-runner.js';
import { BotRegistry, parseBotInfo, SendLimiter, startPollers, TelegramSender, usesWebhook, type Pollers } from '../telegram/index.js';
import { startDialogEventsConsumer } from '../workers/dialog-events-consumer.js';
import { startDialogUpdatesConsumer } from '../workers/dialog-updates-consumer.js';

export interface WorkerTier {
  workers: Worker[];
  close(): Promise<void>;
}

export interface WorkerTierOptions {
  /** Long-poll bots when PUBLIC_URL is not https (default true). */
  poll?: boolean;
}

/** Starts every queue consumer of a worker process, and the Telegram pollers when bots are polled. */
export async function startWorkerTier(config: Config, db: Knex, log: Logger, options: WorkerTierOptions = {}): Promise<WorkerTier> {
  const connection = createWorkerConnection(config.redisUrl, `${config.queuePrefix}:worker`);
  connection.on('error', (error) => log.debug({ err: error }, 'redis connection error'));
  const prefix = config.queuePrefix;

  const stepRuns = new Queue<DialogEventJob>(QUEUES.stepRuns, { connection, prefix });
  const telegramUpdates = new Queue<DialogEventJob>(QUEUES.telegramUpdates, { connection, prefix });
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
  const runner = new DialogRunner({ db, log: log.child({ component: 'runner' }), registry, sender, stepRuns, deliveries });

  const dialogUpdates = startDialogUpdatesConsumer({
    db,
    connection,
    prefix,
    log: log.child({ queue: QUEUES.dialogUpdates }),
    concurrency: config.dialogUpdatesConcurrency,
    // A postback that moved a started dialog (in auto) to a step runs that step.
    onApplied: async (applied, job) => {
      const seq = sequenceOf(job.id);
      const { stepId, status, seqs } = applied.state;
      if (!applied.started || status !== 'auto' || !stepId || seqs.step !== seq) return;
      const data: DialogEventJob = {
        botId: applied.botId,
        chatId: applied.chatId,
        event: { type: 'step', reason: 'postback', stepId, seq },
      };
      await stepRuns.add(STEP_RUN_JOB, data, { ...DIALOG_EVENT_JOB_OPTIONS, jobId: `move-${applied.botId}-${applied.chatId}-${seq}` });
    },
  });
  const eventConsumer = (queueName: string) =>
    startDialogEventsConsumer({
      queueName,
      connection,
      prefix,
      log: log.child({ queue: queueName }),
      concurrency: config.workerConcurrency,
      runner,
    });
  const workers: Worker[] = [
    dialogUpdates,
    eventConsumer(QUEUES.telegramUpdates),
    eventConsumer(QUEUES.stepRuns),
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

  let pollers: Pollers | null = null;
  if ((options.poll ?? true) && !usesWebhook(config.publicUrl)) {
    const inbox = new DialogInbox(connection, prefix);
    pollers = startPollers({
      redis: connection,
      prefix,
      apiRoot: config.telegramApiRoot,
      registry,
      log: log.child({ component: 'telegram-poller' }),
      pollTimeoutSeconds: config.telegramPollTimeoutSeconds,
      listBots: async () => {
        const rows = await db('bots').whereNotNull('telegram_token').select('id', 'telegram_token', 'telegram_info');
        return rows.flatMap((row: { id: string; telegram_token: string; telegram_info: unknown }) => {
          const botInfo = parseBotInfo(row.telegram_info);
          return botInfo ? [{ botId: row.id, token: row.telegram_token, botInfo }] : [];
        });
      },
      onUpdate: async (botId: string, update: Update) => {
        await acceptTelegramUpdate({ inbox, queue: telegramUpdates }, botId, update);
      },
    });
  }
  log.info({ queues: workers.map((w) => w.name), concurrency: config.workerConcurrency, polling: Boolean(pollers) }, 'workers running');
  return {
    workers,
    close: async () => {
      sweeper.stop();
      await pollers?.stop();
      await Promise.all(workers.map((worker) => worker.close()));
      await Promise.all([stepRuns.close(), telegramUpdates.close(), outbound.close(), outboundBatches.close()]);
      await outboundAgent.close();
      connection.disconnect();
    },
  };
}
