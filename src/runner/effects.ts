import { randomUUID } from 'node:crypto';
import type { Queue } from 'bullmq';
import type { Knex } from 'knex';
import type { DialogStatus } from '../domain/dialog.js';
import type { Effect } from '../domain/engine/index.js';
import { DIALOG_EVENT_JOB_OPTIONS, delayJobId, STEP_RUN_JOB, type DialogEventJob } from '../jobs/dialog-event-job.js';
import type { OutboundDeliveryJob } from '../jobs/outbound-delivery-job.js';
import type { Logger } from '../log.js';
import { enqueueDelivery } from '../outbound/enqueue.js';
import { TelegramSendError, type BotCredentials, type TelegramSender } from '../telegram/index.js';
import type { DialogRef } from './dialog-inbox.js';

export interface EffectDeps {
  db: Knex;
  log: Logger;
  sender: TelegramSender;
  stepRuns: Queue<DialogEventJob>;
  outbound: Queue<OutboundDeliveryJob>;
}

/** Records an outbound webhook call and queues its delivery. */
export async function recordDelivery(
  deps: Pick<EffectDeps, 'db' | 'outbound'>,
  dialog: DialogRef,
  effect: Extract<Effect, { type: 'send_webhook' }>,
): Promise<string> {
  const id = randomUUID();
  const request = {
    botId: dialog.botId,
    messageId: `msg_${id.replace(/-/g, '')}`,
    method: effect.method,
    url: effect.url,
    headers: effect.headers,
    body: effect.body,
  };
  await deps.db('deliveries').insert({
    id,
    bot_id: dialog.botId,
    chat_id: dialog.chatId,
    step_id: effect.stepId,
    message_id: request.messageId,
    method: request.method,
    url: request.url,
    headers: JSON.stringify(request.headers),
    body: request.body,
  });
  await enqueueDelivery(deps.outbound, { id, chain: 1, request });
  return id;
}

/**
 * Carries out what a script run decided, in order. Returns the status the dialog must take
 * because of what happened (`blocked` when Telegram says the user blocked the bot), if any.
 */
export async function performEffects(
  deps: EffectDeps,
  dialog: DialogRef,
  bot: BotCredentials | null,
  effects: readonly Effect[],
  runVersion: number,
  now: Date,
): Promise<DialogStatus | undefined> {
  for (const effect of effects) {
    switch (effect.type) {
      case 'send_message': {
        if (!bot) {
          deps.log.warn({ botId: dialog.botId, stepId: effect.stepId }, 'send_message skipped: the bot has no Telegram token');
          continue;
        }
        try {
          const result = await deps.sender.sendMessage(bot, dialog.chatId, effect.text, effect.buttons);
          if (!result.ok) {
            deps.log.info({ ...dialog, reason: result.reason }, 'the user blocked the bot; dialog blocked');
            return 'blocked';
          }
        } catch (error) {
          if (error instanceof TelegramSendError && !error.retryable) {
            deps.log.warn({ err: error, ...dialog, stepId: effect.stepId }, 'message refused by Telegram; skipped');
            continue;
          }
          throw error;
        }
        continue;
      }
      case 'send_webhook':
        await recordDelivery(deps, dialog, effect);
        continue;
      case 'schedule': {
        if (effect.nextStepId === null) continue;
        const data: DialogEventJob = {
          ...dialog,
          event: { type: 'step', reason: 'delay', stepId: effect.nextStepId, fromStepId: effect.stepId, runVersion },
        };
        await deps.stepRuns.add(STEP_RUN_JOB, data, {
          ...DIALOG_EVENT_JOB_OPTIONS,
          jobId: delayJobId(dialog.botId, dialog.chatId, runVersion),
          delay: Math.max(0, effect.runAt.getTime() - now.getTime()),
        });
        continue;
      }
    }
  }
  return undefined;
}
