import type { Context } from 'grammy';
import type { Update } from 'grammy/types';
import { isDatabaseUnavailable } from '../db/connection.js';
import { failInput, loadOpenInputs, type DecisionRecorder, type OpenInput } from '../db/dialog-inputs.js';
import type { DialogRecord, DialogRef } from '../db/dialog-rows.js';
import { decideInput } from '../domain/inputs/decide.js';
import type { DialogInput, InputEvent } from '../domain/inputs/types.js';
import type { DialogLease } from '../redis/dialog-lease.js';
import type { BotRegistry, TelegramEvent } from '../telegram/index.js';
import type { BotCache, BotForRun } from './bot-cache.js';
import { claimStartClick } from './click-claims.js';
import { carryOut, type EffectDeps } from './effects.js';
import { feedUpdate } from './telegram-feed.js';
import { incomingLine } from './transcript-line.js';

export interface DialogDrainerDeps extends EffectDeps {
  lease: DialogLease;
  decisions: DecisionRecorder;
  bots: BotCache;
  registry: BotRegistry;
  random?: () => number;
  /** Tries of one input before it is set aside as dead (default 8). */
  maxAttempts?: number;
}

function displayName(first: string | null, last: string | null): string | null {
  const name = [first, last].filter(Boolean).join(' ');
  return name === '' ? null : name;
}

function toInputEvent(event: TelegramEvent): InputEvent {
  switch (event.kind) {
    case 'start': {
      const { username, firstName, lastName } = event.user;
      return { kind: 'start', user: { username, name: displayName(firstName, lastName), firstName, lastName } };
    }
    case 'text':
      return { kind: 'text', text: event.text };
    case 'button':
      return { kind: 'button', data: event.data };
    default:
      return { kind: event.kind };
  }
}

const OPEN_INPUTS_PER_READ = 20;

/** Reload the dialog before going on (its row changed in a way this process did not read back). */
const RELOAD = null;

/**
 * Handles a dialog's journaled inputs one at a time, in their acceptance order, under the dialog's
 * lease: for each, decide (the pure rules), record the decision and its effects in Postgres, then
 * carry the effects out, marking progress. An input found half done resumes at its first effect
 * not done. An input that keeps failing is set aside (dead) and the dialog goes on.
 */
export class DialogDrainer {
  private readonly random: () => number;
  private readonly maxAttempts: number;

  constructor(private readonly deps: DialogDrainerDeps) {
    this.random = deps.random ?? Math.random;
    this.maxAttempts = deps.maxAttempts ?? 8;
  }

  /**
   * Drains the dialog; `busy` when another process holds it (that process will look again).
   * `snapshot`: the dialog and its open inputs as the caller just wrote them, read instead of
   * Postgres the first time (a stale snapshot is caught when its decision is recorded).
   */
  async drain(ref: DialogRef, snapshot?: { dialog: DialogRecord; inputs: OpenInput[] }): Promise<'drained' | 'busy'> {
    const hold = await this.deps.lease.acquire(ref.botId, ref.chatId);
    if (!hold) return 'busy';
    let preloaded = snapshot;
    try {
      for (;;) {
        const loaded = preloaded ?? (await loadOpenInputs(this.deps.db, ref, OPEN_INPUTS_PER_READ));
        preloaded = undefined;
        if (!loaded || loaded.inputs.length === 0) {
          if (await hold.releaseIfDone()) return 'drained';
          continue;
        }
        let dialog: DialogRecord | null = loaded.dialog;
        for (const input of loaded.inputs) {
          if (!hold.held) throw new Error('the dialog lease was lost');
          dialog = await this.handleCounted(ref, dialog, input);
          if (dialog === RELOAD) break;
        }
        // All there was is handled: an input journaled since then left a note (its wake-up found
        // the lease taken), so letting go unless there is a note loses nothing.
        if (dialog !== RELOAD && loaded.inputs.length < OPEN_INPUTS_PER_READ && (await hold.releaseIfDone()))
          return 'drained';
      }
    } catch (error) {
      await hold.drop().catch(() => undefined);
      throw error;
    }
  }

  private async handleCounted(ref: DialogRef, dialog: DialogRecord, input: OpenInput): Promise<DialogRecord | null> {
    try {
      return await this.handle(ref, dialog, input);
    } catch (error) {
      if (isDatabaseUnavailable(error)) throw error;
      const message = error instanceof Error ? error.message : String(error);
      const state = await failInput(this.deps.db, ref, input.seq, message, this.maxAttempts);
      if (state !== 'dead') throw error;
      this.deps.log.error(
        { err: error, ...ref, seq: input.seq, kind: input.input.kind },
        'dialog input set aside after repeated failures',
      );
      return RELOAD;
    }
  }

  private async handle(ref: DialogRef, dialog: DialogRecord, input: OpenInput): Promise<DialogRecord | null> {
    const bot = await this.deps.bots.get(ref.botId);
    if (!bot) {
      await this.deps.progress.finish(ref, input.seq, 0);
      return dialog;
    }
    if (input.state === 'acting') {
      await carryOut(this.deps, ref, bot, input.seq, input.effects ?? [], input.effectsDone);
      return RELOAD;
    }
    const read = await this.readInput(ref, bot, input.seq, input.input);
    if (!read) {
      await this.deps.progress.finish(ref, input.seq, 0);
      return dialog;
    }
    // Postbacks that waited on the click this /start claimed are now inputs of the dialog: they go
    // first, in their order (one accepted before the /start is handled before it), then this one.
    if (read.reload) return RELOAD;
    let current = dialog;
    for (;;) {
      const decision = decideInput({
        chatId: ref.chatId,
        dialog: current,
        seq: input.seq,
        event: read.event,
        script: bot.script,
        destinations: bot.destinations,
        now: this.deps.now(),
        timezone: bot.timezone,
        random: this.random,
      });
      for (const line of decision.log) this.deps.log.info({ ...ref, seq: input.seq, outcome: decision.outcome }, line);
      const saved = await this.deps.decisions.record({
        ...ref,
        dialog: current,
        seq: input.seq,
        decision,
        incomingPayload: input.input.kind === 'telegram' ? input.input.update : null,
        incoming: input.input.kind === 'telegram' ? incomingLine(input.input.update, read.event) : null,
      });
      if (saved) {
        if (decision.effects.length === 0) return saved;
        const outcome = await carryOut(this.deps, ref, bot, input.seq, decision.effects, 0);
        return outcome === 'done' ? saved : RELOAD;
      }
      // A postback wrote the dialog after it was read: read it again and decide again.
      const reloaded = await loadOpenInputs(this.deps.db, ref, 1);
      if (!reloaded || reloaded.inputs[0]?.seq !== input.seq || reloaded.inputs[0].state !== 'pending') return RELOAD;
      current = reloaded.dialog;
    }
  }

  /** What the input is, as the rules read it; null for a Telegram update of no known shape (or a bot without Telegram). */
  /**
   * `reload`: reading it journaled other inputs of the dialog (postbacks that waited on the click
   * a /start claimed): read the dialog's open inputs again before deciding this one.
   */
  private async readInput(
    ref: DialogRef,
    bot: BotForRun,
    seq: number,
    input: DialogInput,
  ): Promise<{ event: InputEvent; reload: boolean } | null> {
    if (input.kind !== 'telegram') return { event: input, reload: false };
    if (!bot.credentials) return null;
    const grammyBot = this.deps.registry.get(bot.credentials.token, bot.credentials.botInfo);
    let read: InputEvent | null = null;
    let startPayload: string | null = null;
    await feedUpdate(grammyBot, input.update as Update, async (event: TelegramEvent | null, ctx: Context) => {
      if (!event) {
        this.deps.log.warn(
          { botId: ref.botId, updateId: ctx.update.update_id },
          'telegram update of an unknown shape dropped',
        );
        return;
      }
      if (event.kind === 'button') {
        await ctx
          .answerCallbackQuery()
          .catch((error: unknown) => this.deps.log.debug({ err: error }, 'answerCallbackQuery failed'));
      }
      read = toInputEvent(event);
      if (event.kind === 'start' && event.payload) startPayload = event.payload;
    });
    // A campaign link's /start claims its click (with what waited on it) before it is decided.
    const started = read as InputEvent | null;
    if (started?.kind === 'start' && startPayload !== null) {
      const claim = await claimStartClick(this.deps.db, ref, seq, startPayload);
      if (claim) return { event: { ...started, click: claim.click }, reload: claim.journaled };
    }
    return read === null ? null : { event: read, reload: false };
  }
}
