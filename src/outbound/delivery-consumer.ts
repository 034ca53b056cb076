import { DelayedError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Knex } from 'knex';
import type { Dispatcher } from 'undici';
import { findDelivery, recordAttempt, type DeliveryRecord } from '../db/deliveries.js';
import { QUEUES } from '../jobs/queue-names.js';
import type { OutboundDeliveryJob } from '../jobs/outbound-delivery-job.js';
import type { Logger } from '../log.js';
import { attemptDelivery, classifyOutcome, nextAttemptDelayMs, signPayload, validateDeliveryRequest } from './delivery/index.js';
import { hostKey, type HostCircuit, type HostSlots, type LocalHostLimiter } from './fairness/index.js';

export interface DeliveryConsumerOptions {
  db: Knex;
  connection: Redis;
  prefix: string;
  log: Logger;
  concurrency: number;
  /** The guarded undici agent: private targets are refused at connect time. */
  agent: Dispatcher;
  retrySchedule: number[];
  totalTimeoutMs: number;
  userAgent: string;
  /** Per host, across processes, and per process: a slow host holds only so many deliveries at once. */
  slots: HostSlots;
  local: LocalHostLimiter;
  circuit: HostCircuit;
  random?: () => number;
  /** BullMQ lock settings (tests shorten them to see a killed worker's job picked up again). */
  lockDuration?: number;
  stalledInterval?: number;
}

const JSON_BODY = /^\s*[[{]/;

/** The headers of one attempt: the step's, then Standard Webhooks' and ours. */
export function deliveryHeaders(delivery: DeliveryRecord, signingSecret: string | null, userAgent: string, now: Date): Record<string, string> {
  const timestamp = Math.floor(now.getTime() / 1000);
  // Ours replace the step's own of the same name, whatever its case.
  const ours = new Set(['user-agent', 'webhook-id', 'webhook-timestamp', 'webhook-signature']);
  const headers: Record<string, string> = Object.fromEntries(Object.entries(delivery.headers).filter(([key]) => !ours.has(key.toLowerCase())));
  const has = (name: string) => Object.keys(headers).some((key) => key.toLowerCase() === name);
  if (delivery.body !== null && !has('content-type')) {
    headers['content-type'] = JSON_BODY.test(delivery.body) ? 'application/json' : 'text/plain; charset=utf-8';
  }
  headers['user-agent'] = userAgent;
  headers['webhook-id'] = delivery.messageId;
  headers['webhook-timestamp'] = String(timestamp);
  if (signingSecret) {
    headers['webhook-signature'] = signPayload({ secret: signingSecret, msgId: delivery.messageId, timestamp, body: delivery.body ?? '' });
  }
  return headers;
}

/**
 * Consumes `outbound-webhooks`: one job is a delivery's chain of attempts. Each attempt is recorded;
 * a retry is the same job delayed by the schedule (or the receiver's Retry-After); an exhausted or
 * final failure ends `failed`, kept for replay. A busy host's deliveries wait their turn, and a host
 * whose circuit is open is not attempted at all until it is probed again.
 */
export function startDeliveryConsumer(options: DeliveryConsumerOptions): Worker<OutboundDeliveryJob> {
  const { db, log } = options;
  const random = options.random ?? Math.random;

  const later = async (job: Job<OutboundDeliveryJob>, token: string | undefined, delayMs: number): Promise<never> => {
    await job.moveToDelayed(Date.now() + Math.max(1, Math.round(delayMs)), token);
    throw new DelayedError();
  };

  const worker = new Worker<OutboundDeliveryJob>(
    QUEUES.outboundWebhooks,
    async (job, token) => {
      const delivery = await findDelivery(db, job.data.deliveryId);
      if (!delivery || delivery.state !== 'pending') return;
      const checked = validateDeliveryRequest({ method: delivery.method, url: delivery.url, headers: delivery.headers, body: delivery.body });
      if (!checked.ok) {
        await recordAttempt(
          db,
          delivery,
          { startedAt: new Date(), durationMs: 0, status: null, error: checked.reason, errorKind: 'invalid_request', excerpt: null },
          { state: 'failed', nextAttemptAt: null },
        );
        log.warn({ deliveryId: delivery.id, reason: checked.reason }, 'webhook delivery refused');
        return;
      }
      const host = hostKey(checked.url);
      // Order matters: a slot first, then the circuit (asking it may take the one probe of a half-open host).
      if (!options.local.tryAcquire(host)) return later(job, token, 250 + random() * 750);
      const slot = await options.slots.tryAcquire(host).catch((error: unknown) => {
        options.local.release(host);
        throw error;
      });
      if (!slot) {
        options.local.release(host);
        return later(job, token, 250 + random() * 750);
      }
      const circuit = await options.circuit.state(host).catch(async (error: unknown) => {
        options.local.release(host);
        await slot.release().catch(() => undefined);
        throw error;
      });
      if (circuit.state === 'open') {
        options.local.release(host);
        await slot.release().catch(() => undefined);
        // Every waiting delivery of the host must not wake at the same moment.
        return later(job, token, circuit.retryAtMs - Date.now() + random() * 5_000);
      }

      let result: Awaited<ReturnType<typeof attemptDelivery>>;
      const startedAt = new Date();
      try {
        const bot = await db('bots').where({ id: delivery.botId }).first('signing_secret');
        result = await attemptDelivery({
          agent: options.agent,
          method: delivery.method,
          url: checked.url,
          headers: deliveryHeaders(delivery, bot?.signing_secret ?? null, options.userAgent, startedAt),
          body: delivery.body,
          totalTimeoutMs: options.totalTimeoutMs,
        });
      } finally {
        options.local.release(host);
        await slot.release().catch(() => undefined);
      }

      const outcome = classifyOutcome({ status: result.status, error: result.errorKind });
      const attempt = {
        startedAt,
        durationMs: Math.round(result.durationMs),
        status: result.status ?? null,
        error: result.error ?? null,
        errorKind: result.errorKind ?? null,
        excerpt: result.excerpt,
      };
      const hostTrouble = result.errorKind === 'timeout' || result.errorKind === 'network' || (result.status ?? 0) >= 500;
      if (outcome === 'success') await options.circuit.recordSuccess(host);
      else if (hostTrouble) await options.circuit.recordFailure(host);

      if (outcome === 'success' || outcome === 'final') {
        await recordAttempt(db, delivery, attempt, { state: outcome === 'success' ? 'succeeded' : 'failed', nextAttemptAt: null });
        if (outcome === 'final') log.info({ deliveryId: delivery.id, status: result.status, error: result.error }, 'webhook delivery failed for good');
        return;
      }
      const delay = nextAttemptDelayMs({
        attempt: delivery.attemptCount + 1,
        schedule: options.retrySchedule,
        retryAfterHeader: result.retryAfter,
        random,
        now: new Date(),
      });
      if (delay === null) {
        await recordAttempt(db, delivery, attempt, { state: 'failed', nextAttemptAt: null });
        log.info({ deliveryId: delivery.id, attempts: delivery.attemptCount + 1 }, 'webhook delivery exhausted its attempts');
        return;
      }
      const counted = await recordAttempt(db, delivery, attempt, { state: 'pending', nextAttemptAt: new Date(Date.now() + delay) });
      if (!counted) return; // another worker carried this delivery on meanwhile
      return later(job, token, delay);
    },
    {
      connection: options.connection,
      prefix: options.prefix,
      concurrency: options.concurrency,
      maxStalledCount: 1_000,
      ...(options.lockDuration ? { lockDuration: options.lockDuration } : {}),
      ...(options.stalledInterval ? { stalledInterval: options.stalledInterval } : {}),
    },
  );
  worker.on('error', (error) => log.warn({ err: error }, 'outbound worker error'));
  worker.on('failed', (job, error) => log.error({ err: error, jobId: job?.id }, 'outbound delivery job failed'));
  return worker;
}
