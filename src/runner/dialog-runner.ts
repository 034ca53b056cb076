import type { Context } from 'grammy';
import type { Update } from 'grammy/types';
import type { Knex } from 'knex';
import { findBot } from '../db/bots.js';
import { findDialogRecord, loadScript, saveRun, storeIncomingMessage, type DialogRecord, type RunRecord } from '../db/dialog-runs.js';
import type { DialogPatch } from '../domain/dialog.js';
import { parseButtonCallbackData, runEngine, type EngineScript, type Trigger } from '../domain/engine/index.js';
import type { Logger } from '../log.js';
import { parseBotInfo, type BotCredentials, type BotRegistry, type TelegramEvent } from '../telegram/index.js';
import type { DialogEvent, DialogRef } from './dialog-inbox.js';
import { performEffects, type EffectDeps } from './effects.js';
import { feedUpdate } from './telegram-feed.js';

export interface DialogRunnerDeps extends EffectDeps {
  db: Knex;
  log: Logger;
  registry: BotRegistry;
  now?: () => Date;
  random?: () => number;
}

interface BotForRun {
  credentials: BotCredentials | null;
  timezone: string;
  script: EngineScript | null;
}

function displayName(first: string | null, last: string | null): string | null {
  const name = [first, last].filter(Boolean).join(' ');
  return name === '' ? null : name;
}

/**
 * Handles one event of one dialog: reads the dialog, runs its script (the pure engine), carries out
 * what the run decided, and saves the dialog. Runs under the dialog's inbox lease, so the events of
 * one dialog never overlap.
 */
export class DialogRunner {
  private readonly now: () => Date;
  private readonly random: () => number;

  constructor(private readonly deps: DialogRunnerDeps) {
    this.now = deps.now ?? (() => new Date());
    this.random = deps.random ?? Math.random;
  }

  async handle(ref: DialogRef, event: DialogEvent): Promise<void> {
    const bot = await this.loadBot(ref.botId);
    if (!bot) {
      this.deps.log.warn({ ...ref }, 'event dropped: the bot no longer exists');
      return;
    }
    if (event.type === 'telegram') {
      if (!bot.credentials) return;
      const grammyBot = this.deps.registry.get(bot.credentials.token, bot.credentials.botInfo);
      await feedUpdate(grammyBot, event.update as Update, (tgEvent, ctx) => this.onTelegramEvent(ref, bot, tgEvent, ctx));
      return;
    }
    const dialog = await findDialogRecord(this.deps.db, ref.botId, ref.chatId);
    if (!dialog?.startedAt || dialog.state.status !== 'auto') return; // the step runs when the user starts
    if (event.reason === 'postback') {
      const ran = dialog.state.seqs.ran ?? 0;
      if (dialog.state.stepId !== event.stepId || dialog.state.seqs.step !== event.seq || ran >= event.seq) return;
      await this.run(ref, bot, dialog, { kind: 'step', stepId: event.stepId }, { marks: { ran: event.seq } });
    } else {
      if (dialog.runVersion !== event.runVersion || dialog.state.stepId !== event.fromStepId) return; // moved on meanwhile
      await this.run(ref, bot, dialog, { kind: 'step', stepId: event.stepId }, {});
    }
  }

  private async onTelegramEvent(ref: DialogRef, bot: BotForRun, event: TelegramEvent | null, ctx: Context): Promise<void> {
    if (!event) {
      this.deps.log.warn({ botId: ref.botId, updateId: ctx.update.update_id }, 'telegram update of an unknown shape dropped');
      return;
    }
    if (event.kind === 'button') await ctx.answerCallbackQuery().catch((error: unknown) => this.deps.log.debug({ err: error }, 'answerCallbackQuery failed'));
    const dialog = await findDialogRecord(this.deps.db, ref.botId, ref.chatId);
    if (dialog && event.updateId <= dialog.lastUpdateId) return; // delivered twice
    const record: Partial<RunRecord> = { lastUpdateId: event.updateId };

    switch (event.kind) {
      case 'start': {
        const { username, firstName, lastName } = event.user;
        const name = displayName(firstName, lastName);
        record.started = { username, name, firstName, lastName };
        // Starting again after blocking the bot unblocks the dialog; an operator's `manual` stays.
        const status = dialog?.state.status === 'blocked' ? 'auto' : dialog?.state.status;
        const restart = Boolean(dialog?.startedAt) && bot.script;
        const trigger: Trigger = restart ? { kind: 'step', stepId: this.startStepId(bot.script!) ?? '' } : { kind: 'start' };
        const base = dialog ?? emptyRecord();
        const current: DialogRecord = {
          ...base,
          username,
          name,
          startedAt: base.startedAt ?? this.now(),
          state: { ...base.state, ...(status ? { status } : {}) },
        };
        await this.run(ref, bot, current, trigger, { ...record, changes: status && status !== base.state.status ? { status } : {} });
        return;
      }
      case 'text':
        if (!dialog?.startedAt || dialog.state.status !== 'auto') {
          await storeIncomingMessage(this.deps.db, ref.botId, ref.chatId, event.text, ctx.update);
          await saveRun(this.deps.db, ref.botId, ref.chatId, { changes: {}, ...record });
          return;
        }
        await this.run(ref, bot, dialog, { kind: 'text', text: event.text }, record);
        return;
      case 'button': {
        const button = parseButtonCallbackData(event.data);
        if (!dialog?.startedAt || !button || dialog.state.status !== 'auto') {
          await saveRun(this.deps.db, ref.botId, ref.chatId, { changes: {}, ...record });
          return;
        }
        await this.run(ref, bot, dialog, { kind: 'button', stepId: button.stepId, index: button.index }, record);
        return;
      }
      case 'blocked':
        await saveRun(this.deps.db, ref.botId, ref.chatId, { changes: { status: 'blocked' }, ...record });
        return;
      case 'unblocked':
        await saveRun(this.deps.db, ref.botId, ref.chatId, { changes: {}, ...record });
        return;
      case 'other':
        if (dialog?.state.status === 'manual') await storeIncomingMessage(this.deps.db, ref.botId, ref.chatId, null, ctx.update);
        await saveRun(this.deps.db, ref.botId, ref.chatId, { changes: {}, ...record });
        return;
    }
  }

  private startStepId(script: EngineScript): string | null {
    return script.steps.find((s) => s.step.key === script.startKey)?.id ?? null;
  }

  /** Runs the script from a trigger, carries out its effects, then saves the dialog. */
  private async run(ref: DialogRef, bot: BotForRun, dialog: DialogRecord, trigger: Trigger, record: Partial<RunRecord>): Promise<void> {
    const changes: DialogPatch = { ...record.changes };
    if (!bot.script) {
      await saveRun(this.deps.db, ref.botId, ref.chatId, { ...record, changes });
      return;
    }
    const now = this.now();
    const result = runEngine({
      script: bot.script,
      dialog: {
        chatId: ref.chatId,
        username: dialog.username,
        name: dialog.name,
        createdAt: dialog.startedAt,
        status: dialog.state.status,
        stepId: dialog.state.stepId,
        fields: dialog.state.fields,
        tracker: dialog.state.tracker,
        tags: dialog.state.tags,
      },
      trigger,
      now,
      timezone: bot.timezone,
      random: this.random,
    });
    for (const line of result.log) this.deps.log.info({ ...ref, stop: result.stop }, line);
    if (result.stop === 'ignored' && result.effects.length === 0) {
      await saveRun(this.deps.db, ref.botId, ref.chatId, { ...record, changes });
      return;
    }
    const runVersion = dialog.runVersion + 1;
    const forced = await performEffects(this.deps, ref, bot.credentials, result.effects, runVersion, now);
    await saveRun(this.deps.db, ref.botId, ref.chatId, {
      ...record,
      baseSeq: dialog.state.lastSeq,
      runVersion,
      changes: { ...changes, ...result.changes, ...(forced ? { status: forced } : {}) },
    });
  }

  private async loadBot(botId: string): Promise<BotForRun | null> {
    const [bot, script] = await Promise.all([findBot(this.deps.db, botId), loadScript(this.deps.db, botId)]);
    if (!bot) return null;
    const botInfo = parseBotInfo(bot.telegramInfo);
    return {
      credentials: bot.telegramToken && botInfo ? { botId, token: bot.telegramToken, botInfo } : null,
      timezone: bot.timezone,
      script,
    };
  }
}

function emptyRecord(): DialogRecord {
  return {
    state: { status: 'auto', stepId: null, fields: {}, tracker: {}, tags: [], seqs: {}, lastSeq: 0 },
    username: null,
    name: null,
    createdAt: new Date(),
    startedAt: null,
    runVersion: 0,
    lastUpdateId: 0,
  };
}
