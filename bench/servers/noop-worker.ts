// The apply ceiling: a BullMQ worker that does nothing with each job, at flowpost's concurrency.
import { Worker } from 'bullmq';
import { QUEUES } from '../../src/jobs/queue-names.js';
import { createWorkerConnection } from '../../src/redis/connection.js';

const worker = new Worker(QUEUES.dialogUpdates, () => Promise.resolve(), {
  connection: createWorkerConnection(process.env.REDIS_URL!),
  prefix: process.env.QUEUE_PREFIX!,
  concurrency: Number(process.env.WORKER_CONCURRENCY),
});
process.on('SIGTERM', () => void worker.close().then(() => process.exit(0)));
