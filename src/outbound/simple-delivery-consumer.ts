import { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Knex } from 'knex';
import { request } from 'undici';
import { QUEUES } from '../jobs/queue-names.js';
import type { OutboundDeliveryJob } from '../jobs/outbound-delivery-job.js';
import type { Logger } from '../log.js';

const EXCERPT_BYTES = 2048;

/** Delivers a recorded outbound webhook once, recording the attempt. */
export function startOutboundConsumer(options: {
  db: Knex;
  connection: Redis;
  prefix: string;
  log: Logger;
  concurrency: number;
  timeoutMs: number;
}): Worker<OutboundDeliveryJob> {
  const { db, log } = options;
  const worker = new Worker<OutboundDeliveryJob>(
    QUEUES.outboundWebhooks,
    async (job) => {
      const delivery = await db('deliveries').where({ id: job.data.deliveryId }).first();
      if (!delivery || delivery.state !== 'pending') return;
      const startedAt = new Date();
      let status: number | null = null;
      let error: string | null = null;
      let excerpt: string | null = null;
      try {
        const response = await request(delivery.url, {
          method: delivery.method,
          headers: delivery.headers,
          body: delivery.body ?? undefined,
          headersTimeout: options.timeoutMs,
          bodyTimeout: options.timeoutMs,
        });
        status = response.statusCode;
        excerpt = (await response.body.text()).slice(0, EXCERPT_BYTES);
      } catch (failure) {
        error = (failure as Error).message;
      }
      const ok = status !== null && status >= 200 && status < 300;
      await db.transaction(async (trx) => {
        await trx('delivery_attempts').insert({
          delivery_id: delivery.id,
          attempt: delivery.attempt_count + 1,
          started_at: startedAt,
          duration_ms: Date.now() - startedAt.getTime(),
          status,
          error,
          response_excerpt: excerpt,
        });
        await trx('deliveries')
          .where({ id: delivery.id })
          .update({
            state: ok ? 'succeeded' : 'failed',
            attempt_count: delivery.attempt_count + 1,
            last_error: ok ? null : (error ?? `HTTP ${status}`),
            updated_at: trx.fn.now(),
            finished_at: trx.fn.now(),
          });
      });
      log.info({ deliveryId: delivery.id, status, error }, ok ? 'webhook delivered' : 'webhook delivery failed');
    },
    { connection: options.connection, prefix: options.prefix, concurrency: options.concurrency },
  );
  worker.on('error', (failure) => log.warn({ err: failure }, 'outbound worker error'));
  return worker;
}
