import type { ConversionRule } from '../script/types.js';
/** Inputs and outputs of the pure script engine. */
import type { DialogStatus, FieldValue } from '../dialog.js';
import type { Step } from '../script/types.js';

/** A stored step: its stable uuid plus its definition (`step.key` is its key). */
export interface EngineStep {
  id: string;
  step: Step;
}

/** The bot's current script: the start step's key and every stored step. */
export interface EngineScript {
  startKey: string;
  steps: EngineStep[];
  /** What a network's conversion does to a dialog (the first matching rule). */
  onConversion?: ConversionRule[];
}

/** The dialog as the engine sees it at the start of a run. */
export interface EngineDialog {
  chatId: number;
  username: string | null;
  name: string | null;
  /** Dialog start. */
  createdAt: Date | null;
  status: DialogStatus;
  stepId: string | null;
  fields: Record<string, FieldValue>;
  tracker: Record<string, string>;
  tags: string[];
}

/** What makes the engine run. */
export type Trigger =
  /** `/start`: the dialog's current step if a postback set one before the user started, else the start step. */
  | { kind: 'start' }
  /** Run this step (a postback's stepId, or a delay's continuation: the step after the delay). */
  | { kind: 'step'; stepId: string }
  /** The user wrote something. */
  | { kind: 'text'; text: string }
  /** The user pressed button `index` of the send_message step `stepId`. */
  | { kind: 'button'; stepId: string; index: number };

export type EffectButton = { text: string; callbackData: string } | { text: string; url: string };

/** Something the I/O layer must do, in order. */
export type Effect =
  | {
      type: 'send_message';
      stepId: string;
      /** Rendered for Telegram's HTML parse mode. */
      text: string;
      buttons: EffectButton[];
    }
  | {
      type: 'send_webhook';
      stepId: string;
      method: 'GET' | 'POST' | 'PUT';
      url: string;
      headers: Record<string, string>;
      body: string | null;
    }
  | {
      type: 'schedule';
      /** The delay step. */
      stepId: string;
      /** The step to run at `runAt` (a `step` trigger), or null when the delay has no `next`. */
      nextStepId: string | null;
      runAt: Date;
    };

/** The net difference between the input dialog and the dialog after the run; only what changed. */
export interface DialogChanges {
  stepId?: string | null;
  status?: DialogStatus;
  fields?: Record<string, FieldValue | null>;
  addTags?: string[];
  removeTags?: string[];
}

export type StopReason =
  'waiting_input' | 'waiting_buttons' | 'waiting_delay' | 'end' | 'manual' | 'blocked' | 'step_limit' | 'ignored';

export interface EngineResult {
  effects: Effect[];
  changes: DialogChanges;
  /** Why the run stopped. */
  stop: StopReason;
  log: string[];
}

export interface EngineInput {
  script: EngineScript;
  dialog: EngineDialog;
  trigger: Trigger;
  now: Date;
  /** IANA time zone of the bot, for `delay.until`. */
  timezone: string;
  /** Uniform in [0, 1); used by `ab_split`. */
  random: () => number;
  /** The conversion being handled, seen by templates as `{{conversion.*}}`. */
  conversion?: Record<string, string | null>;
  /** Most steps one run may execute; default {@link DEFAULT_MAX_STEPS}. */
  maxSteps?: number;
}

export const DEFAULT_MAX_STEPS = 50;
