import type { Worker } from 'bullmq';
import type { Knex } from 'knex';
import type { Config } from '../config/env.js';
import type { Logger } from '../log.js';
import { createWorkerConnection } from '../queue/redis.js';
import { startDialogUpdatesConsumer } from '../workers/dialog-updates-consumer.js';

export interface WorkerTier {
  workers: Worker[];
  close(): Promise<void>;
}

/** Starts every queue consumer of a worker process. */
export async function startWorkerTier(config: Config, db: Knex, log: Logger): Promise<WorkerTier> {
  const connection = createWorkerConnection(config.redisUrl);
  connection.on('error', (error) => log.debug({ err: error }, 'redis connection error'));
  const dialogUpdates = startDialogUpdatesConsumer({
    db,
    connection,
    prefix: config.queuePrefix,
    log: log.child({ queue: 'dialog-updates' }),
    concurrency: config.workerConcurrency,
  });
  const workers: Worker[] = [dialogUpdates];
  await Promise.all(workers.map((worker) => worker.waitUntilReady()));
  log.info({ queues: workers.map((w) => w.name), concurrency: config.workerConcurrency }, 'workers running');
  return {
    workers,
    close: async () => {
      await Promise.all(workers.map((worker) => worker.close()));
      connection.disconnect();
    },
  };
}
