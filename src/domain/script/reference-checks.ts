import type { StepEntry } from './parse-shape.js';
import { stepPath } from './problem-path.js';
import { stepTransitions } from './transitions.js';
import type { ScriptProblem } from './types.js';

/** Index of the first step with each key; later steps with the same key are problems. */
export function checkDuplicateKeys(entries: readonly StepEntry[]): {
  firstIndex: ReadonlyMap<string, number>;
  problems: ScriptProblem[];
} {
  const firstIndex = new Map<string, number>();
  const problems: ScriptProblem[] = [];
  for (const { index, key } of entries) {
    if (key === undefined) continue;
    const first = firstIndex.get(key);
    if (first === undefined) firstIndex.set(key, index);
    else {
      problems.push({
        step: key,
        path: stepPath(index, 'key'),
        message: `duplicate step key "${key}" (first used by ${stepPath(first)})`,
      });
    }
  }
  return { firstIndex, problems };
}

export function checkStart(start: string, keys: ReadonlyMap<string, number>): ScriptProblem[] {
  return keys.has(start) ? [] : [{ path: 'start', message: `names no step: "${start}"` }];
}

/** Every `next`, button `next`, branch `next`, `else` and variant `next` must name a step. */
export function checkReferences(entry: StepEntry, keys: ReadonlyMap<string, number>): ScriptProblem[] {
  const { step, index } = entry;
  if (step === undefined) return [];
  return stepTransitions(step, index)
    .filter((transition) => !keys.has(transition.target))
    .map((transition) => ({
      step: step.key,
      path: transition.path,
      message: `names no step: "${transition.target}"`,
    }));
}
