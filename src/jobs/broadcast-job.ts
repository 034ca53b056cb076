import type { Queue } from 'bullmq';
import { JOB_RETENTION } from './job-retention.js';
import { QUEUES } from './queue-names.js';

const BROADCAST_JOB = 'run';

/** On `broadcasts`: run one broadcast (start it when its time has come, then send). */
export interface BroadcastJob {
  broadcastId: string;
}

/** One queued run per broadcast: a repeat (the sweeper, a resume) while one is queued or running is the same job. */
function broadcastJobId(broadcastId: string): string {
  return `broadcast-${broadcastId}`;
}

const BROADCAST_JOB_OPTIONS = {
  attempts: 5,
  backoff: { type: 'exponential', delay: 2_000 },
  ...JOB_RETENTION[QUEUES.broadcasts],
} as const;

/** Queues a broadcast's run (one per broadcast at a time: the job id names it), after `delayMs`. */
export async function queueBroadcastRun(queue: Queue<BroadcastJob>, broadcastId: string, delayMs = 0): Promise<void> {
  await queue.add(
    BROADCAST_JOB,
    { broadcastId },
    { ...BROADCAST_JOB_OPTIONS, jobId: broadcastJobId(broadcastId), ...(delayMs > 0 ? { delay: delayMs } : {}) },
  );
}
