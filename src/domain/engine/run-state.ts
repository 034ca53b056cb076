/** What the step runners of one engine run share. */
import { renderTemplate, type TemplateContext, type TemplateMode } from '../../templates/index.js';
import type { ScriptIndex } from './script-index.js';
import type { Effect, EngineStep } from './types.js';
import type { WorkingDialog } from './working-dialog.js';

export interface RunState {
  readonly script: ScriptIndex;
  readonly dialog: WorkingDialog;
  readonly now: Date;
  readonly timezone: string;
  readonly random: () => number;
  /** The conversion being handled (`{{conversion.*}}`), when a conversion runs the script. */
  readonly conversion: Record<string, string | null> | null;
  readonly effects: Effect[];
  readonly log: string[];
}

/** A step that cannot run as written; the run hands the dialog to an operator. */
export class StepError extends Error {
  override readonly name = 'StepError';
}

/** The template context of the working dialog while `stored` runs. */
function templateContext(run: RunState, stored: EngineStep): TemplateContext {
  const { dialog } = run;
  return {
    chatId: dialog.chatId,
    username: dialog.username,
    name: dialog.name,
    createdAt: dialog.createdAt,
    stepKey: stored.step.key,
    stepId: stored.id,
    status: dialog.status,
    fields: dialog.fields,
    tracker: dialog.tracker,
    ...(run.conversion ? { conversion: run.conversion } : {}),
  };
}

/** Renders a template against the working dialog; throws TemplateError when the render fails. */
export function render(run: RunState, stored: EngineStep, source: string, mode: TemplateMode): string {
  return renderTemplate(source, mode, templateContext(run, stored));
}

/** How a step ended. */
export type StepOutcome =
  /** Go on with the step of this key; `undefined`: the script ends here. */
  | { kind: 'continue'; next: string | undefined }
  /** The dialog now waits; `finish`: apply the step's finishStatus now (not for input, which finishes on the reply). */
  | { kind: 'wait'; stop: 'waiting_input' | 'waiting_buttons' | 'waiting_delay'; finish: boolean }
  /** The step turned the dialog manual itself (no condition branch matched); its finishStatus is not applied. */
  | { kind: 'manual' };

export const continueWith = (next: string | undefined): StepOutcome => ({ kind: 'continue', next });
