import type { Redis } from 'ioredis';
import type { RecordedOutcome } from '../db/conversions.js';
import type { AppliedDialog, DialogUpdateInput } from '../db/dialog-writer.js';
import type { DialogPatch } from '../domain/dialog.js';
import type { ConversionRequest } from '../domain/tracker/conversion.js';
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
  /** Records a conversion for its dialog under this order (new, moved, duplicate or ignored). */
  recordConversion?(
    target: { botId: string; chatId: number; seq: number },
    conversion: ConversionRequest,
  ): Promise<RecordedOutcome>;
}

/**
 * A conversion's update for its dialog once recorded: a duplicate or an ignored move changes
 * nothing (null); a new one or a status move merges its values and journals the conversion.
 */
export function conversionUpdateInput(
  data: { botId: string; chatId: number; patch: DialogPatch },
  conversion: ConversionRequest,
  seq: number,
  recorded: RecordedOutcome,
): DialogUpdateInput | null {
  if (recorded.outcome !== 'new' && recorded.outcome !== 'moved') return null;
  const { clickid, event, status, payout, currency, tid } = conversion;
  const { values } = splitPostback(data.patch);
  return {
    botId: data.botId,
    chatId: data.chatId,
    seq,
    patch: values,
    input: {
      kind: 'conversion',
      conversion: {
        clickid,
        event,
        status,
        payout,
        currency,
        tid,
        campaignId: recorded.click.campaignId,
        campaign: recorded.click.campaign,
        click: recorded.click.ad,
        // Stable per conversion and status: a retried delivery, or a repeat of the same call, keeps it.
        eventKey: `${recorded.conversionId}-${status}`,
        eventTime: recorded.eventTime,
      },
    },
  };
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
  if (data.operatorMessage) {
    return { botId, chatId, seq, input: { kind: 'operator_message', text: data.operatorMessage.text } };
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
    data = {
      botId,
      chatId,
      patch: job.data.patch,
      ...(job.data.conversion ? { conversion: job.data.conversion } : {}),
    };
  } else {
    data = job.data;
  }
  const { chatId } = data;
  let update: DialogUpdateInput | null = toUpdateInput(data, seq);
  if (data.conversion && data.patch) {
    if (!deps.recordConversion) throw new Error('a conversion needs recordConversion');
    const recorded = await deps.recordConversion({ botId, chatId, seq }, data.conversion);
    update = conversionUpdateInput({ botId, chatId, patch: data.patch }, data.conversion, seq, recorded);
    if (!update) return 'applied';
  }
  const applied = await deps.apply(update);
  if (!applied) {
    deps.log.warn({ botId, chatId, jobId: job.id }, 'dialog update dropped: the bot no longer exists');
    return 'dropped';
  }
  if (applied.dropped) {
    // The dialog is at a key limit (src/domain/limits.ts): the rest of the update applied, these keys did not.
    deps.log.warn(
      { botId, chatId, jobId: job.id, dropped: applied.dropped },
      'dialog at its key limit: keys not added',
    );
  }
  await deps.onApplied?.(applied, seq);
  return 'applied';
}
