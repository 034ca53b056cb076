/** Worker-side job metrics: each finished job's duration and outcome, and a debug line with its request id. */
import type { Job, Worker } from 'bullmq';
import type { Logger } from '../config/log.js';
import { jobDuration, jobs } from './metrics.js';

/** The request id a job carries when a web request queued it. */
function requestIdOf(job: Job): string | undefined {
  const id = (job.data as { requestId?: unknown } | null)?.requestId;
  return typeof id === 'string' ? id : undefined;
}

function observe(queue: string, job: Job, outcome: 'completed' | 'failed', log: Logger): void {
  jobs.inc({ queue, outcome });
  const ms = job.finishedOn && job.processedOn ? job.finishedOn - job.processedOn : undefined;
  if (ms !== undefined) jobDuration.observe({ queue }, ms / 1000);
  if (log.isLevelEnabled('debug')) {
    const requestId = requestIdOf(job);
    log.debug({ queue, jobId: job.id, ms, outcome, ...(requestId ? { requestId } : {}) }, `job ${outcome}`);
  }
}

/**
 * Counts every job the workers finish (a failed attempt counts as failed; a job put back for later
 * or while paused counts as neither). Listens to the workers' events, so consumers stay as they are.
 */
export function instrumentWorkers(workers: readonly Worker[], log: Logger): void {
  for (const worker of workers) {
    const queue = worker.name;
    worker.on('completed', (job: Job) => observe(queue, job, 'completed', log));
    worker.on('failed', (job: Job | undefined) => {
      if (job) observe(queue, job, 'failed', log);
    });
  }
}
