/** Steps that change the dialog itself: `change_tags`, `set_fields`, `set_status`. */
import { TemplateError } from '../../templates/index.js';
import type { FieldValue } from '../dialog.js';
import type { ChangeTagsStep, SetFieldsStep, SetStatusStep } from '../script/types.js';
import { continueWith, render, type RunState, type StepOutcome } from './run-state.js';
import type { EngineStep } from './types.js';

/** Removes, then adds (the validator refuses a tag in both lists). */
export function runChangeTags(run: RunState, stored: EngineStep, step: ChangeTagsStep): StepOutcome {
  for (const tag of step.remove ?? []) run.dialog.removeTag(tag);
  for (const tag of step.add ?? []) run.dialog.addTag(tag);
  return continueWith(step.next);
}

/**
 * Text values are plain templates, all rendered against the dialog as it was before this step;
 * a text that is not a usable template is stored as written. Numbers and booleans are stored as they are.
 */
export function runSetFields(run: RunState, stored: EngineStep, step: SetFieldsStep): StepOutcome {
  const values: Array<[string, FieldValue]> = Object.entries(step.fields).map(([key, value]) => {
    if (typeof value !== 'string') return [key, value];
    try {
      return [key, render(run, stored, value, 'plain')];
    } catch (error) {
      if (!(error instanceof TemplateError)) throw error;
      run.log.push(`${stored.step.key}: field "${key}" is not a usable template (${error.message}); stored as written`);
      return [key, value];
    }
  });
  for (const [key, value] of values) run.dialog.setField(key, value);
  return continueWith(step.next);
}

export function runSetStatus(run: RunState, stored: EngineStep, step: SetStatusStep): StepOutcome {
  run.dialog.status = step.status;
  run.log.push(`${stored.step.key}: status ${step.status}`);
  return continueWith(step.next);
}
