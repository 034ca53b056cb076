import type { Queue } from 'bullmq';
import type { Update } from 'grammy/types';
import { DIALOG_EVENT_JOB_OPTIONS, TELEGRAM_UPDATE_JOB, telegramUpdateJobId, type DialogEventJob } from '../jobs/dialog-event-job.js';
import { classifyUpdate } from '../telegram/index.js';
import type { DialogInbox } from './dialog-inbox.js';

export type AcceptResult = 'queued' | 'dropped';

/**
 * Takes a Telegram update (from the webhook or from long polling) into its dialog's inbox, in
 * arrival order, and queues the drain (deduplicated by update_id while the job is kept). An update
 * that names no chat is dropped.
 */
export async function acceptTelegramUpdate(
  deps: { inbox: DialogInbox; queue: Queue<DialogEventJob> },
  botId: string,
  update: Update,
): Promise<AcceptResult> {
  const event = classifyUpdate(update);
  if (!event) return 'dropped';
  const ref = { botId, chatId: event.chatId };
  await deps.inbox.push(ref, { type: 'telegram', updateId: event.updateId, update });
  await deps.queue.add(TELEGRAM_UPDATE_JOB, ref, { ...DIALOG_EVENT_JOB_OPTIONS, jobId: telegramUpdateJobId(botId, event.updateId) });
  return 'queued';
}
