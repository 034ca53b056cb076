import { createHash, randomUUID } from 'node:crypto';
import type { Queue } from 'bullmq';
import type { Knex } from 'knex';
import { blockDialog } from '../db/dialog-inputs.js';
import type { OutgoingLine } from '../db/dialog-messages.js';
import type { DialogRef } from '../db/dialog-rows.js';
import type { InputProgressWriter } from '../db/input-progress.js';
import type { DialogTimer, RecordedEffect } from '../domain/inputs/types.js';
import { DIALOG_RUN_JOB_OPTIONS, TIMER_JOB, timerJobId, type DialogRunJob } from '../jobs/dialog-run-job.js';
import type { Logger } from '../config/log.js';
import type { DeliveryRecorder } from '../outbound/delivery-recorder.js';
import { TelegramSendError, type TelegramSender } from '../telegram/index.js';
import type { BotForRun } from './bot-cache.js';

export interface EffectDeps {
  db: Knex;
  log: Logger;
  sender: TelegramSender;
  /** `step-runs`: delays' alarms. */
  timers: Queue<DialogRunJob>;
  deliveries: DeliveryRecorder;
  progress: InputProgressWriter;
  now: () => Date;
}

/** A UUID (version 5 layout) derived from a name, so the same effect of the same input gets the same id. */
function nameBasedUuid(name: string): string {
  const bytes = createHash('sha1').update(name).digest().subarray(0, 16);
  bytes[6] = (bytes[6]! & 0x0f) | 0x50;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Records an outbound webhook call (once per effect: its id is derived from the input and the effect) and queues it. */
export async function recordDelivery(
  deps: Pick<EffectDeps, 'deliveries'>,
  dialog: DialogRef,
  effect: Extract<RecordedEffect, { type: 'send_webhook' }>,
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

/** The transcript lines of a sent text: one per message Telegram acknowledged, with that part's text. */
function sentLines(
  sender: TelegramSender,
  text: string,
  messageIds: readonly number[],
  by: 'operator' | undefined,
): OutgoingLine[] {
  if (messageIds.length === 0) return [];
  const parts = sender.parts(text);
  return messageIds.map((id, i) => ({ text: parts[i] ?? '', telegramMessageId: id, ...(by ? { sender: by } : {}) }));
}

/** Arms a delay's alarm (the dialog row holds the delay itself; a lost alarm is re-armed by the sweeper). */
async function armTimer(timers: Queue<DialogRunJob>, dialog: DialogRef, timer: DialogTimer, now: Date): Promise<void> {
  await timers.add(
    TIMER_JOB,
    { ...dialog, timer },
    {
      ...DIALOG_RUN_JOB_OPTIONS,
      jobId: timerJobId(dialog.botId, dialog.chatId, timer.scheduledBy),
      delay: Math.max(0, Date.parse(timer.at) - now.getTime()),
    },
  );
}

/**
 * Carries out an input's recorded effects from `from` on, in order, and marks the input done. After
 * each message Telegram acknowledged, how far the input got is written before anything else is
 * done, so a retry resumes after it: an acknowledged message is never sent again (one whose outcome
 * is unknown, a timeout, may be). Webhook calls and alarms are idempotent by their ids. Returns
 * `blocked` when Telegram said the user blocked the bot (the dialog was set blocked).
 */
export async function carryOut(
  deps: EffectDeps,
  dialog: DialogRef,
  bot: BotForRun,
  seq: number,
  effects: readonly RecordedEffect[],
  from: number,
): Promise<'done' | 'blocked'> {
  // The messages of the last send, recorded with the progress write that passes its effect.
  let sent: OutgoingLine[] = [];
  for (let index = from; index < effects.length; index++) {
    const effect = effects[index]!;
    switch (effect.type) {
      case 'send_message':
      case 'operator_message': {
        const step = effect.type === 'send_message' ? { stepId: effect.stepId } : { sender: 'operator' as const };
        if (!bot.credentials) {
          deps.log.warn({ botId: dialog.botId, ...step }, `${effect.type} skipped: the bot has no Telegram token`);
          break;
        }
        try {
          const buttons = effect.type === 'send_message' ? effect.buttons : [];
          const result = await deps.sender.sendMessage(bot.credentials, dialog.chatId, effect.text, buttons);
          sent = sentLines(deps.sender, effect.text, result.messageIds, step.sender);
          if (!result.ok) {
            deps.log.info({ ...dialog, reason: result.reason }, 'the user blocked the bot; dialog blocked');
            await blockDialog(deps.db, dialog, seq);
            await deps.progress.finish(dialog, seq, effects.length, sent);
            return 'blocked';
          }
        } catch (error) {
          if (!(error instanceof TelegramSendError) || error.retryable) throw error;
          deps.log.warn({ err: error, ...dialog, ...step }, 'message refused by Telegram; skipped');
        }
        if (index + 1 < effects.length) {
          await deps.progress.advance(dialog, seq, index + 1, sent);
          sent = [];
        }
        break;
      }
      case 'send_webhook':
        await recordDelivery(deps, dialog, effect, `input-${seq}/effect-${index}`);
        break;
      case 'schedule':
        if (effect.timer.stepId !== null) await armTimer(deps.timers, dialog, effect.timer, deps.now());
        break;
    }
  }
  await deps.progress.finish(dialog, seq, effects.length, sent);
  return 'done';
}
