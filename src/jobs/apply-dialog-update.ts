import type { Redis } from 'ioredis';
import type { AppliedDialog, DialogUpdateInput } from '../db/dialog-writer.js';
import type { Logger } from '../config/log.js';
import type { SequenceFloor } from '../redis/sequence-floor.js';
import { telegramDedupeKey } from '../telegram/token-key.js';
import { splitPostback } from '../db/dialog-writer.js';
import { sequenceOf, type ChatUpdateJob, type DialogUpdateJob } from './dialog-update-job.js';

export interface ApplyDialogUpdateDeps {
  redis: Redis;
  floor: SequenceFloor;
  log: Logger;
  /** Writes the update (with the others held at the same moment); undefined when its bot is gone. */
  apply(update: DialogUpdateInput): Promise<AppliedDialog | undefined>;
  /** Queues an input again (one drawn too low after Redis lost its counter). */
  requeue(job: DialogUpdateJob): Promise<unknown>;
  /** After the update is durably applied (the dialog's journaled inputs are drained from here). */
  onApplied?(applied: AppliedDialog, seq: number): Promise<void>;
  /**
   * Where a click-addressed postback goes: the chat that claimed the click, or null when nobody
   * has (the postback then waits on the click, kept in Postgres); undefined for an unknown click.
   */
  resolveClick?(job: Extract<DialogUpdateJob, { clickid: string }>, seq: number): Promise<number | null | undefined>;
}

/** An accepted job as the writer takes it: a postback's values to merge, and what to journal. */
export function toUpdateInput(data: ChatUpdateJob, seq: number): DialogUpdateInput {
  const { botId, chatId } = data;
  if (data.telegram) {
    const { update, tokenKey } = data.telegram;
    const updateId = (update as { update_id?: unknown }).update_id;
    return {
      botId,
      chatId,
      seq,
      input: { kind: 'telegram', update, tokenKey },
      dedupeKey: typeof updateId === 'number' ? telegramDedupeKey(tokenKey, updateId) : null,
    };
  }
  const { values, move } = splitPostback(data.patch);
  return { botId, chatId, seq, patch: values, ...(move ? { input: move } : {}) };
}

/**
 * The `dialog-updates` processor: one accepted input, with its order (the job id). An order drawn
 * below a restored counter is queued again above it; otherwise the update is applied and its
 * dialog woken.
 */
export async function applyDialogUpdate(
  job: { id?: string; data: DialogUpdateJob },
  deps: ApplyDialogUpdateDeps,
): Promise<'applied' | 'requeued' | 'dropped' | 'waiting'> {
  const { botId } = job.data;
  const seq = sequenceOf(job.id);
  if (await deps.floor.drawnTooLow(deps.redis, seq)) {
    deps.log.warn(
      { botId, chatId: job.data.chatId, jobId: job.id },
      'update drawn below the restored order counter; queued again above it',
    );
    await deps.requeue(job.data);
    return 'requeued';
  }
  let data: ChatUpdateJob;
  if (job.data.clickid !== undefined) {
    const chatId = deps.resolveClick ? await deps.resolveClick(job.data, seq) : undefined;
    if (chatId === undefined) {
      deps.log.warn({ botId, clickid: job.data.clickid, jobId: job.id }, 'dialog update dropped: no such click');
      return 'dropped';
    }
    if (chatId === null) return 'waiting';
    data = { botId, chatId, patch: job.data.patch };
  } else {
    data = job.data;
  }
  const { chatId } = data;
  const applied = await deps.apply(toUpdateInput(data, seq));
  if (!applied) {
    deps.log.warn({ botId, chatId, jobId: job.id }, 'dialog update dropped: the bot no longer exists');
    return 'dropped';
  }
  await deps.onApplied?.(applied, seq);
  return 'applied';
}
