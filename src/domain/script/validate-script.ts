import { SCRIPT_LIMITS } from './limits.js';
import { parseShape } from './parse-shape.js';
import { checkDuplicateKeys, checkReferences, checkStart } from './reference-checks.js';
import { checkStepRules } from './step-rules.js';
import { checkTemplates } from './template-checks.js';
import type { ScriptProblem, Step, ValidateScriptOptions, ValidateScriptResult } from './types.js';
import { checkWaitLoops } from './wait-loops.js';

function capped(problems: ScriptProblem[]): ScriptProblem[] {
  const max = SCRIPT_LIMITS.maxProblems;
  if (problems.length <= max) return problems;
  return [...problems.slice(0, max), { path: '', message: `${problems.length - max} more problems not listed` }];
}

/**
 * Validates a whole script document. Collects every problem: shape problems
 * first, then semantic ones for the steps whose shape is valid.
 */
export function validateScript(input: unknown, options: ValidateScriptOptions = {}): ValidateScriptResult {
  const shape = parseShape(input, options.maxSteps ?? SCRIPT_LIMITS.maxSteps);
  const problems = [...shape.problems];

  const { firstIndex, problems: duplicates } = checkDuplicateKeys(shape.entries);
  problems.push(...duplicates);
  if (shape.start !== undefined && shape.entries.length > 0) problems.push(...checkStart(shape.start, firstIndex));

  const parsed = shape.entries.flatMap(({ index, step }) => (step === undefined ? [] : [{ index, step }]));
  for (const entry of parsed) {
    problems.push(...checkReferences(entry, firstIndex));
    problems.push(...checkStepRules(entry.step, entry.index));
    if (options.checkTemplate) problems.push(...checkTemplates(entry.step, entry.index, options.checkTemplate));
  }
  problems.push(...checkWaitLoops(parsed));
  shape.onConversion?.forEach((rule, i) => {
    if (rule.next !== undefined && !firstIndex.has(rule.next)) {
      problems.push({ path: `onConversion[${i}].next`, message: `names no step: "${rule.next}"` });
    }
  });

  if (problems.length > 0 || shape.start === undefined) return { ok: false, problems: capped(problems) };
  // With no problems left, every step passed its shape and the rules the shape cannot
  // express (a button has next xor url, a delay seconds xor until), so it is a Step.
  const steps = parsed.map(({ step }): Step => step as Step);
  return {
    ok: true,
    script: { start: shape.start, steps, ...(shape.onConversion?.length ? { onConversion: shape.onConversion } : {}) },
  };
}
