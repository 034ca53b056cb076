import { createHash, randomUUID } from 'node:crypto';
import type { Queue } from 'bullmq';
import type { Knex } from 'knex';
import type { DialogStatus } from '../domain/dialog.js';
import type { Effect } from '../domain/engine/index.js';
import { DIALOG_EVENT_JOB_OPTIONS, delayJobId, STEP_RUN_JOB, type DialogEventJob } from '../jobs/dialog-event-job.js';
import type { Logger } from '../log.js';
import type { DeliveryRecorder } from '../outbound/delivery-recorder.js';
import { TelegramSendError, type BotCredentials, type TelegramSender } from '../telegram/index.js';
import type { DialogRef } from './dialog-inbox.js';

export interface EffectDeps {
  db: Knex;
  log: Logger;
  sender: TelegramSender;
  stepRuns: Queue<DialogEventJob>;
  deliveries: DeliveryRecorder;
}

/** A UUID (version 5 layout) derived from a name, so the same effect of the same run gets the same id. */
export function nameBasedUuid(name: string): string {
  const bytes = createHash('sha1').update(name).digest().subarray(0, 16);
  bytes[6] = (bytes[6]! & 0x0f) | 0x50;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * Records an outbound webhook call and queues its delivery. With `effectKey` (run and effect), a
 * run handled again after a failure records and sends the call once, not once per try.
 */
export async function recordDelivery(
  deps: Pick<EffectDeps, 'deliveries'>,
  dialog: DialogRef,
  effect: Extract<Effect, { type: 'send_webhook' }>,
  effectKey?: string,
): Promise<string> {
  const id = effectKey ? nameBasedUuid(`${dialog.botId}/${dialog.chatId}/${effectKey}`) : randomUUID();
  await deps.deliveries.record({
    id,
    chatId: dialog.chatId,
    stepId: effect.stepId,
    request: {
      botId: dialog.botId,
      messageId: `msg_${id.replace(/-/g, '')}`,
      method: effect.method,
      url: effect.url,
      headers: effect.headers,
      body: effect.body,
    },
  });
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
  for (const [index, effect] of effects.entries()) {
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
        await recordDelivery(deps, dialog, effect, `run-${runVersion}/effect-${index}`);
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
