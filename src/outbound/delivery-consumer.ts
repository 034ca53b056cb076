import { DelayedError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { isDatabaseUnavailable } from '../db/connection.js';
import type { Knex } from 'knex';
import type { Dispatcher } from 'undici';
import { DeliveryBatches } from '../db/delivery-batches.js';
import type { DeliveryRecord } from '../db/deliveries.js';
import { QUEUES } from '../jobs/queue-names.js';
import type { OutboundDeliveryJob } from '../jobs/outbound-delivery-job.js';
import type { Logger } from '../log.js';
import { attemptDelivery, classifyOutcome, nextAttemptDelayMs, signPayload, validateDeliveryRequest } from './delivery/index.js';
import { hostKey, type CircuitState, type HostCircuit, type LocalHostLimiter } from './fairness/index.js';

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
  /** A host's share of this process's deliveries: a slow host holds at most so many at once. */
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
  const { log } = options;
  const random = options.random ?? Math.random;
  const batches = new DeliveryBatches(options.db);
  const circuit = new CircuitView(options.circuit);

  const later = async (job: Job<OutboundDeliveryJob>, token: string | undefined, delayMs: number): Promise<never> => {
    await job.moveToDelayed(Date.now() + Math.max(1, Math.round(delayMs)), token);
    throw new DelayedError();
  };
  const secrets = new SigningSecrets(options.db);

  /** The delivery as the job knows it, or (a large body, an older job) as the database has it. */
  const currentDelivery = async (job: Job<OutboundDeliveryJob>): Promise<{ delivery: DeliveryRecord } | null> => {
    const { request, chain, attempts } = job.data;
    if (request && chain !== undefined && attempts !== undefined) {
      return {
        delivery: {
          id: job.data.deliveryId,
          botId: request.botId,
          chatId: null,
          stepId: null,
          messageId: request.messageId,
          method: request.method,
          url: request.url,
          headers: request.headers,
          body: request.body,
          state: 'pending',
          chain,
          attemptCount: attempts,
          lastError: null,
          nextAttemptAt: null,
          createdAt: new Date(),
          finishedAt: null,
        },
      };
    }
    const loaded = await batches.load(job.data.deliveryId);
    return loaded && loaded.delivery.state === 'pending' ? { delivery: loaded.delivery } : null;
  };

  /**
   * The attempt did not count: the delivery is not as the job thought (a worker died between
   * recording an attempt and noting it in the job, or the delivery was settled elsewhere). Carry on
   * from what the database says.
   */
  const resync = async (job: Job<OutboundDeliveryJob>, token: string | undefined): Promise<void> => {
    const loaded = await batches.load(job.data.deliveryId);
    if (!loaded || loaded.delivery.state !== 'pending') return;
    await job.updateData({ ...job.data, chain: loaded.delivery.chain, attempts: loaded.delivery.attemptCount });
    await later(job, token, 0);
  };

  // A host with all its slots taken: wait a while (spread out, so waiting jobs do not wake together).
  const busy = (job: Job<OutboundDeliveryJob>, token: string | undefined) => later(job, token, 500 + random() * 1_500);

  const deliver = async (job: Job<OutboundDeliveryJob>, token: string | undefined): Promise<void> => {
      // The cheap gate first: this process's share of the host, before any I/O.
      if (job.data.host && options.local.isFull(job.data.host)) return busy(job, token);
      const current = await currentDelivery(job);
      if (!current) return;
      const { delivery } = current;
      const checked = validateDeliveryRequest({ method: delivery.method, url: delivery.url, headers: delivery.headers, body: delivery.body });
      if (!checked.ok) {
        await batches.record({
          delivery,
          attempt: { startedAt: new Date(), durationMs: 0, status: null, error: checked.reason, errorKind: 'invalid_request', excerpt: null },
          outcome: { state: 'failed', nextAttemptAt: null },
        });
        log.warn({ deliveryId: delivery.id, reason: checked.reason }, 'webhook delivery refused');
        return;
      }
      const host = hostKey(checked.url);
      // Order matters: a slot first, then the circuit (asking it may take the one probe of a half-open host).
      if (!options.local.tryAcquire(host)) return busy(job, token);
      const state = await circuit.state(host).catch((error: unknown) => {
        options.local.release(host);
        throw error;
      });
      if (state.state === 'open') {
        options.local.release(host);
        return later(job, token, state.retryAtMs - Date.now() + random() * 5_000);
      }

      const startedAt = new Date();
      let result: Awaited<ReturnType<typeof attemptDelivery>>;
      try {
        result = await attemptDelivery({
          agent: options.agent,
          method: delivery.method,
          url: checked.url,
          headers: deliveryHeaders(delivery, await secrets.get(delivery.botId), options.userAgent, startedAt),
          body: delivery.body,
          totalTimeoutMs: options.totalTimeoutMs,
        });
      } finally {
        options.local.release(host);
      }

      const outcome = classifyOutcome({ status: result.status, error: result.errorKind });
      const attempt = {
        startedAt,
        durationMs: Math.round(result.durationMs),
        status: result.status ?? null,
        error: storable(result.error),
        errorKind: result.errorKind ?? null,
        excerpt: storable(result.excerpt),
      };
      const hostTrouble = result.errorKind === 'timeout' || result.errorKind === 'network' || (result.status ?? 0) >= 500;
      if (outcome === 'success') await circuit.recordSuccess(host, state.state === 'half_open');
      else if (hostTrouble) await circuit.recordFailure(host);

      if (outcome === 'success' || outcome === 'final') {
        const counted = await batches.record({ delivery, attempt, outcome: { state: outcome === 'success' ? 'succeeded' : 'failed', nextAttemptAt: null } });
        if (!counted) return resync(job, token);
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
        if (!(await batches.record({ delivery, attempt, outcome: { state: 'failed', nextAttemptAt: null } }))) return resync(job, token);
        log.info({ deliveryId: delivery.id, attempts: delivery.attemptCount + 1 }, 'webhook delivery exhausted its attempts');
        return;
      }
      const counted = await batches.record({ delivery, attempt, outcome: { state: 'pending', nextAttemptAt: new Date(Date.now() + delay) } });
      if (!counted) return resync(job, token);
      await job.updateData({ ...job.data, attempts: delivery.attemptCount + 1 });
      return later(job, token, delay);
  };

  const worker = new Worker<OutboundDeliveryJob>(
    QUEUES.outboundWebhooks,
    async (job, token) => {
      try {
        await deliver(job, token);
      } catch (error) {
        if (error instanceof DelayedError || !isDatabaseUnavailable(error)) throw error;
        // Postgres is away: the delivery waits, without spending the job's retries.
        log.warn({ err: error, deliveryId: job.data.deliveryId }, 'postgres unreachable; delivery waits');
        await later(job, token, 2_000 + random() * 3_000);
      }
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

/** Each bot's signing secret, read at most once a second per process (a new secret applies within a second). */
class SigningSecrets {
  private readonly cache = new Map<string, { secret: Promise<string | null>; at: number }>();

  constructor(private readonly db: Knex) {}

  get(botId: string): Promise<string | null> {
    const hit = this.cache.get(botId);
    if (hit && Date.now() - hit.at < 1_000) return hit.secret;
    const secret = this.db('bots')
      .where({ id: botId })
      .first('signing_secret')
      .then((row: { signing_secret: string | null } | undefined) => row?.signing_secret ?? null);
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(botId, { secret, at: Date.now() });
    secret.catch(() => this.cache.delete(botId));
    return secret;
  }
}

/** Postgres text holds no U+0000; a receiver's answer may. */
function storable(text: string | null | undefined): string | null {
  if (text === null || text === undefined) return null;
  return text.includes('\u0000') ? text.replace(/\u0000/g, '') : text;
}

/**
 * This process's view of the shared circuit breaker: a closed circuit is trusted for a second
 * (the breaker opens only after many failures), and successes are reported at most once a second
 * per host unless they close a half-open circuit or follow a failure seen here.
 */
class CircuitView {
  private readonly closedUntil = new Map<string, number>();
  private readonly successReportedAt = new Map<string, number>();
  private readonly failedHosts = new Set<string>();

  constructor(private readonly circuit: HostCircuit) {}

  async state(host: string): Promise<CircuitState> {
    const now = Date.now();
    if ((this.closedUntil.get(host) ?? 0) > now) return { state: 'closed' };
    const state = await this.circuit.state(host);
    if (state.state === 'closed') {
      if (this.closedUntil.size > 10_000) this.closedUntil.clear();
      this.closedUntil.set(host, now + 1_000);
    } else {
      this.closedUntil.delete(host);
    }
    return state;
  }

  async recordSuccess(host: string, probe: boolean): Promise<void> {
    const now = Date.now();
    if (!probe && !this.failedHosts.has(host) && now - (this.successReportedAt.get(host) ?? 0) < 1_000) return;
    this.failedHosts.delete(host);
    if (this.successReportedAt.size > 10_000) this.successReportedAt.clear();
    this.successReportedAt.set(host, now);
    await this.circuit.recordSuccess(host);
  }

  async recordFailure(host: string): Promise<void> {
    this.failedHosts.add(host);
    this.closedUntil.delete(host);
    const state = await this.circuit.recordFailure(host);
    if (state.state !== 'closed') this.closedUntil.delete(host);
  }
}
