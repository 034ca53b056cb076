/**
 * The process's Prometheus metrics: one Registry and every metric object, created once per process
 * (a name registered twice in one Registry throws, and several tiers may run in one process). What
 * belongs to a tier (its queues, its Postgres pool) is read at scrape time from the sources the tier
 * adds, and removes when it closes (see sources.ts).
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { poolFigures, queueFigures } from './sources.js';

export const registry = new Registry();

// Event loop lag, heap and RSS, GC, handles, CPU: prom-client's standard process metrics.
collectDefaultMetrics({ register: registry });

const registers = [registry];

export const httpRequests = new Counter({
  name: 'flowpost_http_requests_total',
  help: 'HTTP requests answered, by route name, method and status code',
  labelNames: ['route', 'method', 'code'] as const,
  registers,
});

export const httpDuration = new Histogram({
  name: 'flowpost_http_request_duration_seconds',
  help: 'Time from a request arriving to its answer, by route name and method',
  labelNames: ['route', 'method'] as const,
  buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  registers,
});

export const jobs = new Counter({
  name: 'flowpost_jobs_total',
  help: 'Queue jobs this process finished, by queue and outcome (completed, failed)',
  labelNames: ['queue', 'outcome'] as const,
  registers,
});

export const jobDuration = new Histogram({
  name: 'flowpost_job_duration_seconds',
  help: 'Time a job was processed (taken to finished), by queue',
  labelNames: ['queue'] as const,
  buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  registers,
});

export const webhookAttempts = new Counter({
  name: 'flowpost_webhook_attempts_total',
  help: 'Outbound webhook HTTP attempts, by outcome (2xx, 3xx, 4xx, 5xx, timeout, refused, network, invalid, aborted)',
  labelNames: ['outcome'] as const,
  registers,
});

export const webhookDuration = new Histogram({
  name: 'flowpost_webhook_attempt_duration_seconds',
  help: 'Time of one outbound webhook attempt',
  buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  registers,
});

export const telegramCalls = new Counter({
  name: 'flowpost_telegram_calls_total',
  help: 'Bot API calls, by method and outcome (ok, throttled, blocked, client_error, server_error, network)',
  labelNames: ['method', 'outcome'] as const,
  registers,
});

export const telegramRetryAfter = new Histogram({
  name: 'flowpost_telegram_retry_after_seconds',
  help: 'retry_after of the Bot API 429 answers',
  buckets: [1, 2, 3, 5, 10, 20, 30, 60, 120, 300],
  registers,
});

/** The queue figures of one scrape, read once for the three gauges below. */
let queueRead: ReturnType<typeof queueFigures> | null = null;
function readQueuesOnce(): ReturnType<typeof queueFigures> {
  if (!queueRead) {
    queueRead = queueFigures();
    // Every gauge's collect starts in the same scrape, before this settles.
    void queueRead.finally(() => {
      queueRead = null;
    });
  }
  return queueRead;
}

new Gauge({
  name: 'flowpost_queue_jobs',
  help: 'Jobs in each BullMQ queue by state (waiting, active, delayed, failed), read from Redis at scrape time',
  labelNames: ['prefix', 'queue', 'state'] as const,
  registers,
  async collect() {
    const figures = await readQueuesOnce();
    this.reset();
    for (const { prefix, queues } of figures) {
      for (const q of queues ?? []) {
        for (const state of ['waiting', 'active', 'delayed', 'failed'] as const)
          this.set({ prefix, queue: q.queue, state }, q[state]);
      }
    }
  },
});

new Gauge({
  name: 'flowpost_queue_oldest_waiting_seconds',
  help: 'Age of the oldest waiting job of each queue (since it was queued or its delay ended); 0 when none waits',
  labelNames: ['prefix', 'queue'] as const,
  registers,
  async collect() {
    const figures = await readQueuesOnce();
    this.reset();
    for (const { prefix, queues } of figures) {
      for (const q of queues ?? []) this.set({ prefix, queue: q.queue }, q.oldestWaitingSeconds);
    }
  },
});

new Gauge({
  name: 'flowpost_queue_figures_up',
  help: '1 when the queue figures of this prefix could be read from Redis in this scrape, else 0',
  labelNames: ['prefix'] as const,
  registers,
  async collect() {
    const figures = await readQueuesOnce();
    this.reset();
    for (const { prefix, queues } of figures) this.set({ prefix }, queues ? 1 : 0);
  },
});

new Gauge({
  name: 'flowpost_db_pool_connections',
  help: 'Postgres pool connections of this process by state (used, free)',
  labelNames: ['state'] as const,
  registers,
  collect() {
    const pool = poolFigures();
    this.set({ state: 'used' }, pool.used);
    this.set({ state: 'free' }, pool.free);
  },
});

new Gauge({
  name: 'flowpost_db_pool_pending_acquires',
  help: 'Queries of this process waiting for a Postgres pool connection',
  registers,
  collect() {
    this.set(poolFigures().pendingAcquires);
  },
});
