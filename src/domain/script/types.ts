/** The normalized script document accepted by `PUT /api/v1/bots/{botId}/script`. */

import type { DialogStatus } from '../dialog.js';

export { DIALOG_STATUSES, type DialogStatus } from '../dialog.js';

export const STEP_TYPES = [
  'send_message',
  'send_webhook',
  'delay',
  'condition',
  'input',
  'change_tags',
  'set_fields',
  'set_status',
  'ab_split',
] as const;
export type StepType = (typeof STEP_TYPES)[number];

export const WEBHOOK_METHODS = ['GET', 'POST', 'PUT'] as const;
export type WebhookMethod = (typeof WEBHOOK_METHODS)[number];

export const CONDITION_OPS = ['is', 'not', 'gt', 'lt', 'has', 'exists'] as const;
export type ConditionOp = (typeof CONDITION_OPS)[number];

export type ConditionSubject = `fields.${string}` | `tracker.${string}` | 'tags';
export type ScalarValue = string | number | boolean;

interface StepBase {
  key: string;
  /** Step run after this one. */
  next?: string;
  /** The dialog's status after the step. */
  finishStatus?: DialogStatus;
}

/** A button either jumps to a step (`next`) or opens an http(s) link (`url`). */
export type MessageButton =
  { text: string; next: string; url?: undefined } | { text: string; url: string; next?: undefined };

export interface SendMessageStep extends StepBase {
  type: 'send_message';
  text: string;
  buttons?: MessageButton[];
}

export interface SendWebhookStep extends StepBase {
  type: 'send_webhook';
  method: WebhookMethod;
  url: string;
  /** String template; never present with GET. */
  body?: string;
  /** Header name → string template. */
  headers?: Record<string, string>;
}

/** Waits a number of seconds, or until the next "HH:MM" in the bot's timezone. */
export type DelayStep = StepBase & { type: 'delay' } & (
    { seconds: number; until?: undefined } | { until: string; seconds?: undefined }
  );

export interface Condition {
  subject: ConditionSubject;
  op: ConditionOp;
  value?: ScalarValue;
}

/** Taken when every condition in `when` holds. */
export interface ConditionBranch {
  when: Condition[];
  next: string;
}

/** First matching branch wins, else `else`; with neither the dialog turns `manual`. */
export interface ConditionStep extends StepBase {
  type: 'condition';
  branches?: ConditionBranch[];
  else?: string;
}

/** Sends `text`, waits for the user's reply and stores it in `field`. */
export interface InputStep extends StepBase {
  type: 'input';
  text: string;
  field: string;
}

export interface ChangeTagsStep extends StepBase {
  type: 'change_tags';
  add?: string[];
  remove?: string[];
}

export interface SetFieldsStep extends StepBase {
  type: 'set_fields';
  fields: Record<string, ScalarValue>;
}

export interface SetStatusStep extends StepBase {
  type: 'set_status';
  status: DialogStatus;
}

export interface SplitVariant {
  weight: number;
  next: string;
}

export interface AbSplitStep extends StepBase {
  type: 'ab_split';
  variants: SplitVariant[];
}

export type Step =
  | SendMessageStep
  | SendWebhookStep
  | DelayStep
  | ConditionStep
  | InputStep
  | ChangeTagsStep
  | SetFieldsStep
  | SetStatusStep
  | AbSplitStep;

/** What a network's conversion does to its dialog: the first rule whose event and status match. */
export interface ConversionRule {
  event?: string;
  status?: 'lead' | 'sale' | 'rejected';
  /** The step the dialog moves to (run at once when started and `auto`). */
  next?: string;
  setStatus?: DialogStatus;
  addTags?: string[];
  setFields?: Record<string, ScalarValue>;
}

export interface ScriptDocument {
  start: string;
  steps: Step[];
  onConversion?: ConversionRule[];
}

export interface ScriptProblem {
  /** Key of the step the problem is in, when it is in a step with a valid key. */
  step?: string;
  /** Where in the document, e.g. `steps[3].buttons[0].next`; `""` for the document itself. */
  path: string;
  message: string;
}

export type TemplateMode = 'plain' | 'html' | 'url' | 'json';

export interface ValidateScriptOptions {
  /** Returns an error message for a broken template, or null when it is fine. */
  checkTemplate?: (source: string, mode: TemplateMode) => string | null;
  /** Defaults to SCRIPT_LIMITS.maxSteps. */
  maxSteps?: number;
}

export type ValidateScriptResult = { ok: true; script: ScriptDocument } | { ok: false; problems: ScriptProblem[] };
