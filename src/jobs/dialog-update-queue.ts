import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { DIALOG_UPDATE_JOB, DIALOG_UPDATE_JOB_OPTIONS, type DialogUpdateJob } from './dialog-update-job.js';
import type { SequenceFloor } from '../redis/sequence-floor.js';

/**
 * Queues accepted dialog inputs (postbacks, Telegram updates) on `dialog-updates`, where each gets
 * its acceptance order. An id at or below the floor means Redis lost its counter (FLUSHALL, a
 * failover without the data): the counter is put back above Postgres' highest order and the input
 * queued again above it. The job drawn too low is withdrawn if no worker has taken it yet; one a
 * worker took is queued again by that worker (see SequenceFloor.drawnTooLow).
 */
export class DialogUpdateQueue {
  constructor(
    readonly queue: Queue<DialogUpdateJob>,
    private readonly redis: Redis,
    readonly floor: SequenceFloor,
  ) {}

  /** `onQueued` learns each id a job got, also when a later step fails (the job is queued then all the same). */
  async add(job: DialogUpdateJob, onQueued?: (id: string) => void): Promise<string> {
    for (let attempt = 0; ; attempt++) {
      const added = await this.queue.add(DIALOG_UPDATE_JOB, job, DIALOG_UPDATE_JOB_OPTIONS);
      const id = added.id!;
      onQueued?.(id);
      if (!this.floor.regressed(id) || attempt >= 2) {
        this.floor.observe(id);
        return id;
      }
      await this.floor.restore(this.redis);
      // Only a job no worker has taken is withdrawn (a taken one cannot be removed while locked,
      // and a finished one was queued again by its worker).
      const waiting = (await added.getState().catch(() => 'unknown')) === 'waiting';
      const withdrawn =
        waiting &&
        (await added.remove().then(
          () => true,
          () => false,
        ));
      if (!withdrawn) return id;
    }
  }
}
