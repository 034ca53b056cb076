import { setImmediate as setImmediatePromise } from 'node:timers/promises';
import { DelayedError, Worker, type Job, type Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { isDatabaseUnavailable } from '../db/connection.js';
import type { Knex } from 'knex';
import type { Dispatcher } from 'undici';
import { DeliveryBatches, storableText } from '../db/delivery-batches.js';
import type { DeliveryRecord } from '../db/deliveries.js';
import { QUEUES } from '../jobs/queue-names.js';
import type { OutboundBatchJob, OutboundDeliveryJob } from '../jobs/outbound-delivery-job.js';
import { chainJob } from '../outbound/enqueue.js';
import type { Logger } from '../config/log.js';
import { attemptDelivery, classifyOutcome, nextAttemptDelayMs, signPayload, validateDeliveryRequest } from '../outbound/delivery/index.js';
import { HostPace, hostKey, type CircuitState, type HostCircuit, type LocalHostLimiter } from '../outbound/fairness/index.js';

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
  /** Where a batched delivery that must wait goes: a chain job of its own. */
  chains: Queue<OutboundDeliveryJob>;
  /** Batch jobs taken at once (each holds up to a hundred deliveries; their requests in flight are still capped by `concurrency`). Default 8. */
  batchConcurrency?: number;
  /** BullMQ lock settings (tests shorten them to see a killed worker's job picked up again). */
  lockDuration?: number;
  stalledInterval?: number;
}

const JSON_BODY = /^\s*[[{]/;

// Ours replace the step's own of the same name, whatever its case.
const OUR_HEADERS = new Set(['user-agent', 'webhook-id', 'webhook-timestamp', 'webhook-signature']);

/** The headers of one attempt: the step's, then Standard Webhooks' and ours. */
export function deliveryHeaders(delivery: DeliveryRecord, signingSecret: string | null, userAgent: string, now: Date): Record<string, string> {
  const timestamp = Math.floor(now.getTime() / 1000);
  const headers: Record<string, string> = {};
  let hasContentType = false;
  for (const name in delivery.headers) {
    if (!Object.hasOwn(delivery.headers, name)) continue;
    const lower = name.toLowerCase();
    if (OUR_HEADERS.has(lower)) continue;
    if (lower === 'content-type') hasContentType = true;
    headers[name] = delivery.headers[name]!;
  }
  if (delivery.body !== null && !hasContentType) {
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

/** What became of one delivery's turn. */
type Turn =
  | { kind: 'done' }
  /**
   * Try again after `delayMs`; `attempts` is the count recorded in the chain so far. `host`: not
   * attempted because of its host (busy, slow or short-circuited), so a batch may wait as a whole.
   */
  | { kind: 'later'; delayMs: number; attempts: number; host?: true }
  /** The delivery is not as the job thought: carry on from what the database says. */
  | { kind: 'resync' };

/** Deliveries leaving a batch are queued so many at a time. */
const HANDOFF_GROUP = 20;

/** How long a batched delivery waits in line for its host before it is held back with its batch. */
const BATCH_HOST_WAIT_MS = 1_000;

/**
 * Consumes `outbound-webhooks` (one job per chain of attempts) and `outbound-webhook-batches` (the
 * first attempts of deliveries recorded together). Each attempt is recorded; a retry is the
 * chain's job delayed by the schedule (or the receiver's Retry-After); an exhausted or final
 * failure ends `failed`, kept for replay. A busy host's deliveries wait their turn, and a host
 * whose circuit is open is not attempted at all until it is probed again.
 */
export function startDeliveryConsumer(options: DeliveryConsumerOptions): Worker[] {
  const { log } = options;
  const random = options.random ?? Math.random;
  const batches = new DeliveryBatches(options.db);
  const circuit = new CircuitView(options.circuit);
  const pace = new HostPace();
  const secrets = new SigningSecrets(options.db);
  // Batched requests in flight at once in this process (chain jobs are bounded by their worker's concurrency).
  const batchSlots = new Slots(options.concurrency);

  /** The delivery as the job carries it (its request, chain and count), if it does. */
  const carriedDelivery = (data: OutboundDeliveryJob): DeliveryRecord | null => {
    const { request, chain, attempts } = data;
    if (request && chain !== undefined && attempts !== undefined) {
      return {
        id: data.deliveryId,
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
      };
    }
    return null;
  };

  /** The delivery as the database has it (a large body, an older job), if still to be delivered. */
  const storedDelivery = async (data: OutboundDeliveryJob): Promise<DeliveryRecord | null> => {
    const loaded = await batches.load(data.deliveryId);
    return loaded && loaded.delivery.state === 'pending' ? loaded.delivery : null;
  };

  // A host with all its slots taken: wait a while (spread out, so waiting jobs do not wake together).
  const busy = (host: string, attempts: number): Turn => ({ kind: 'later', delayMs: pace.busyDelayMs(host, random), attempts, host: true });
  // A batched delivery to a host known to be slow: it waits as a chain job, never holding its batch.
  const slowHost = (host: string, attempts: number): Turn => ({ kind: 'later', delayMs: pace.busyDelayMs(host, random), attempts });

  /**
   * One delivery's turn: at most one attempt, recorded. It takes this process's share of the host
   * at once (a chain job, which can wait in Redis) or in line for a while (`inLine`: a batched one).
   */
  const takeTurn = async (data: OutboundDeliveryJob, inLine: boolean): Promise<Turn> => {
    // The cheap gates first, before any I/O: this process's share of the host; a batch never waits
    // behind a slow host (the delivery leaves for a chain job of its own).
    if (data.host && inLine && pace.isSlow(data.host)) return slowHost(data.host, data.attempts ?? 0);
    if (data.host && !inLine && options.local.isFull(data.host)) return busy(data.host, data.attempts ?? 0);
    const delivery = carriedDelivery(data) ?? (await storedDelivery(data));
    if (!delivery) return { kind: 'done' };
    const checked = validateDeliveryRequest({ method: delivery.method, url: delivery.url, headers: delivery.headers, body: delivery.body });
    if (!checked.ok) {
      await batches.record({
        delivery,
        attempt: { startedAt: new Date(), durationMs: 0, status: null, error: checked.reason, errorKind: 'invalid_request', excerpt: null },
        outcome: { state: 'failed', nextAttemptAt: null },
      });
      log.warn({ deliveryId: delivery.id, reason: checked.reason }, 'webhook delivery refused');
      return { kind: 'done' };
    }
    const host = hostKey(checked.url);
    if (inLine && pace.isSlow(host)) return slowHost(host, delivery.attemptCount);
    // Order matters: a slot first, then the circuit (asking it may take the one probe of a half-open host).
    const slot = inLine ? options.local.acquire(host, BATCH_HOST_WAIT_MS) : options.local.tryAcquire(host);
    if (!(await slot)) return busy(host, delivery.attemptCount);
    let state: CircuitState;
    try {
      state = circuit.trustedClosed(host) ? CLOSED : await circuit.state(host);
    } catch (error) {
      options.local.release(host);
      throw error;
    }
    if (state.state === 'open') {
      options.local.release(host);
      return { kind: 'later', delayMs: state.retryAtMs - Date.now() + random() * 5_000, attempts: delivery.attemptCount, host: true };
    }

    // A batched delivery also takes one of this process's slots for batched requests in flight.
    if (inLine) await batchSlots.acquire();
    const startedAt = new Date();
    let result: Awaited<ReturnType<typeof attemptDelivery>>;
    try {
      result = await attemptDelivery({
        agent: options.agent,
        method: checked.method,
        url: checked.url,
        prechecked: true,
        headers: deliveryHeaders(delivery, await secrets.get(delivery.botId), options.userAgent, startedAt),
        body: delivery.body,
        totalTimeoutMs: options.totalTimeoutMs,
      });
    } finally {
      options.local.release(host);
      if (inLine) batchSlots.release();
    }
    pace.observe(host, result.durationMs);

    const outcome = classifyOutcome({ status: result.status, error: result.errorKind });
    const attempt = {
      startedAt,
      durationMs: Math.round(result.durationMs),
      status: result.status ?? null,
      error: storableText(result.error),
      errorKind: result.errorKind ?? null,
      excerpt: storableText(result.excerpt),
    };
    const hostTrouble = result.errorKind === 'timeout' || result.errorKind === 'network' || (result.status ?? 0) >= 500;
    if (outcome === 'success') {
      if (circuit.successWorthReporting(host, state.state === 'half_open')) await circuit.recordSuccess(host);
    } else if (hostTrouble) {
      await circuit.recordFailure(host);
    }

    if (outcome === 'success' || outcome === 'final') {
      const counted = await batches.record({ delivery, attempt, outcome: { state: outcome === 'success' ? 'succeeded' : 'failed', nextAttemptAt: null } });
      if (!counted) return { kind: 'resync' };
      if (outcome === 'final') log.info({ deliveryId: delivery.id, status: result.status, error: result.error }, 'webhook delivery failed for good');
      return { kind: 'done' };
    }
    const delay = nextAttemptDelayMs({
      attempt: delivery.attemptCount + 1,
      schedule: options.retrySchedule,
      retryAfterHeader: result.retryAfter,
      random,
      now: new Date(),
    });
    if (delay === null) {
      if (!(await batches.record({ delivery, attempt, outcome: { state: 'failed', nextAttemptAt: null } }))) return { kind: 'resync' };
      log.info({ deliveryId: delivery.id, attempts: delivery.attemptCount + 1 }, 'webhook delivery exhausted its attempts');
      return { kind: 'done' };
    }
    const counted = await batches.record({ delivery, attempt, outcome: { state: 'pending', nextAttemptAt: new Date(Date.now() + delay) } });
    if (!counted) return { kind: 'resync' };
    return { kind: 'later', delayMs: delay, attempts: delivery.attemptCount + 1 };
  };

  /** Postgres is away: the delivery waits, without spending its retries. */
  const waitOutOutage = (error: unknown, data: OutboundDeliveryJob): Turn => {
    if (!isDatabaseUnavailable(error)) throw error;
    log.warn({ err: error, deliveryId: data.deliveryId }, 'postgres unreachable; delivery waits');
    return { kind: 'later', delayMs: 2_000 + random() * 3_000, attempts: data.attempts ?? 0 };
  };

  /** A delivery's chain as the database has it, when it is still to be delivered. */
  const fromDatabase = async (data: OutboundDeliveryJob): Promise<{ data: OutboundDeliveryJob; delayMs: number } | null> => {
    const loaded = await batches.load(data.deliveryId);
    if (!loaded || loaded.delivery.state !== 'pending') return null;
    const { delivery } = loaded;
    return {
      data: { ...data, chain: delivery.chain, attempts: delivery.attemptCount },
      delayMs: Math.max(0, (delivery.nextAttemptAt?.getTime() ?? 0) - Date.now()),
    };
  };

  /** The job waits in Redis for `delayMs` (BullMQ takes it up again then). */
  const waitInRedis = async (job: Job, token: string | undefined, delayMs: number): Promise<never> => {
    await job.moveToDelayed(Date.now() + Math.max(1, Math.round(delayMs)), token);
    throw new DelayedError();
  };

  /** The chain job that carries on a delivery from what the database has of it, if still to be delivered. */
  const chainFromDatabase = async (member: OutboundDeliveryJob) => {
    const current = await fromDatabase(member);
    return current ? chainJob(current.data, current.delayMs) : null;
  };

  const chainWorker = new Worker<OutboundDeliveryJob>(
    QUEUES.outboundWebhooks,
    async (job, token) => {
      const turn = await takeTurn(job.data, false).catch((error: unknown) => waitOutOutage(error, job.data));
      if (turn.kind === 'done') return;
      if (turn.kind === 'resync') {
        const current = await fromDatabase(job.data);
        if (!current) return;
        await job.updateData(current.data);
        return waitInRedis(job, token, current.delayMs);
      }
      if (turn.attempts !== (job.data.attempts ?? 0)) await job.updateData({ ...job.data, attempts: turn.attempts });
      return waitInRedis(job, token, turn.delayMs);
    },
    workerOptions(options, options.concurrency),
  );

  /**
   * A batch: every delivery takes its turn (in line for its host, then for one of this process's
   * batch slots). One that must retry leaves for a chain job of its own; those held back by their
   * host (busy, slow, short-circuited) stay together, and the batch waits in Redis as one job
   * until the earliest of them may go. A batch run again (it waited, or its worker died) first
   * asks the database which of its deliveries are still to be attempted.
   */
  const batchWorker = new Worker<OutboundBatchJob>(
    QUEUES.outboundBatches,
    async (job, token) => {
      const leaving: Array<ReturnType<typeof chainJob>> = [];
      const held: OutboundDeliveryJob[] = [];
      let heldForMs = Infinity;
      let members = job.data.deliveries;
      if (job.attemptsStarted > 1) {
        const fresh: OutboundDeliveryJob[] = [];
        await Promise.all(
          members.map(async (member) => {
            const current = await fromDatabase(member);
            if (!current) return;
            if (current.data.chain === member.chain && current.data.attempts === (member.attempts ?? 0)) fresh.push(member);
            else leaving.push(chainJob(current.data, current.delayMs));
          }),
        );
        members = fresh;
      }
      const turnOf = async (member: OutboundDeliveryJob): Promise<void> => {
        const turn = await takeTurn(member, true)
          .catch((error: unknown) => waitOutOutage(error, member))
          .catch((error: unknown): Turn => {
            log.error({ err: error, deliveryId: member.deliveryId }, 'batched delivery failed; it leaves its batch');
            return { kind: 'later', delayMs: 5_000, attempts: member.attempts ?? 0 };
          });
        if (turn.kind === 'later' && turn.host) {
          held.push({ ...member, attempts: turn.attempts });
          heldForMs = Math.min(heldForMs, turn.delayMs);
        } else if (turn.kind === 'later') {
          leaving.push(chainJob({ ...member, attempts: turn.attempts }, turn.delayMs));
        }
        if (turn.kind === 'resync') {
          const chain = await chainFromDatabase(member);
          if (chain) leaving.push(chain);
        }
      };
      const turns: Array<Promise<void>> = [];
      for (const [index, member] of members.entries()) {
        // Let other work run between groups of starts: a hundred at once would hold the event loop.
        if (index > 0 && index % 10 === 0) await setImmediatePromise();
        turns.push(turnOf(member));
      }
      await Promise.all(turns);
      // In small groups: Redis runs a bulk add as one transaction, and a long one holds up every other client.
      for (let start = 0; start < leaving.length; start += HANDOFF_GROUP) await options.chains.addBulk(leaving.slice(start, start + HANDOFF_GROUP));
      if (held.length === 0) return;
      await job.updateData({ deliveries: held });
      return waitInRedis(job, token, heldForMs);
    },
    workerOptions(options, options.batchConcurrency ?? 8),
  );

  for (const worker of [chainWorker, batchWorker] as Worker[]) {
    worker.on('error', (error) => log.warn({ err: error }, 'outbound worker error'));
    worker.on('failed', (job, error) => log.error({ err: error, jobId: job?.id }, 'outbound delivery job failed'));
  }
  return [chainWorker, batchWorker];
}

function workerOptions(options: DeliveryConsumerOptions, concurrency: number) {
  return {
    connection: options.connection,
    prefix: options.prefix,
    concurrency,
    maxStalledCount: 1_000,
    ...(options.lockDuration ? { lockDuration: options.lockDuration } : {}),
    ...(options.stalledInterval ? { stalledInterval: options.stalledInterval } : {}),
  };
}

/** At most `limit` holders at once; the rest wait in line. */
class Slots {
  private free: number;
  private readonly line: Array<() => void> = [];

  constructor(limit: number) {
    this.free = limit;
  }

  acquire(): Promise<void> | void {
    if (this.free > 0) {
      this.free--;
      return;
    }
    return new Promise<void>((resolve) => this.line.push(resolve));
  }

  /** Gives the slot to the first in line, if any. */
  release(): void {
    const next = this.line.shift();
    if (next) next();
    else this.free++;
  }
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

const CLOSED: CircuitState = { state: 'closed' };

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

  /** The circuit was seen closed less than a second ago: no need to ask. */
  trustedClosed(host: string): boolean {
    return (this.closedUntil.get(host) ?? 0) > Date.now();
  }

  async state(host: string): Promise<CircuitState> {
    const now = Date.now();
    if ((this.closedUntil.get(host) ?? 0) > now) return CLOSED;
    const state = await this.circuit.state(host);
    if (state.state === 'closed') {
      if (this.closedUntil.size > 10_000) this.closedUntil.clear();
      this.closedUntil.set(host, now + 1_000);
    } else {
      this.closedUntil.delete(host);
    }
    return state;
  }

  /** Whether a success is to be reported: it closes a probe, follows a failure, or the last report is a second old. */
  successWorthReporting(host: string, probe: boolean): boolean {
    return probe || this.failedHosts.has(host) || Date.now() - (this.successReportedAt.get(host) ?? 0) >= 1_000;
  }

  async recordSuccess(host: string): Promise<void> {
    const now = Date.now();
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
