// The ingest ceiling: a bare Koa route that does one BullMQ queue.add (fail-fast producer
// connection, the same job options as flowpost's postback route), nothing else.
import Koa from 'koa';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { DIALOG_UPDATE_JOB, DIALOG_UPDATE_JOB_OPTIONS } from '../../src/jobs/dialog-update-job.js';
import { QUEUES } from '../../src/jobs/queue-names.js';

const redis = new Redis(process.env.REDIS_URL!, { enableOfflineQueue: false, maxRetriesPerRequest: 1 });
const queue = new Queue(QUEUES.dialogUpdates, { connection: redis, prefix: process.env.QUEUE_PREFIX! });
const app = new Koa();
app.use(async (ctx) => {
  const job = await queue.add(DIALOG_UPDATE_JOB, { chatId: ctx.query.chatId }, DIALOG_UPDATE_JOB_OPTIONS);
  ctx.status = 202;
  ctx.body = { ok: true, updateId: job.id };
});
app.listen(Number(process.env.PORT), '127.0.0.1');
