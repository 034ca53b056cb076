import type { ParsedStep } from './step-schemas.js';
import { templateSources } from './template-sources.js';
import type { ScriptProblem, ValidateScriptOptions } from './types.js';

type CheckTemplate = NonNullable<ValidateScriptOptions['checkTemplate']>;

/** Runs the template checker over every template-bearing text of a step. */
export function checkTemplates(step: ParsedStep, index: number, checkTemplate: CheckTemplate): ScriptProblem[] {
  const problems: ScriptProblem[] = [];
  for (const { path, source, mode } of templateSources(step, index)) {
    const error = checkTemplate(source, mode);
    if (error !== null) problems.push({ step: step.key, path, message: error });
  }
  return problems;
}
