/** Steps that choose where to go: `condition` and `ab_split`. */
import type { AbSplitStep, ConditionStep } from '../script/types.js';
import { evaluateCondition } from './conditions.js';
import { continueWith, type RunState, type StepOutcome } from './run-state.js';
import type { EngineStep } from './types.js';

/** First branch whose every condition holds, else `else`; with neither the dialog turns manual. */
export function runCondition(run: RunState, stored: EngineStep, step: ConditionStep): StepOutcome {
  const branches = step.branches ?? [];
  for (let i = 0; i < branches.length; i++) {
    const branch = branches[i]!;
    if (branch.when.every((condition) => evaluateCondition(condition, run.dialog))) {
      run.log.push(`${stored.step.key}: branch ${i} → ${branch.next}`);
      return continueWith(branch.next);
    }
  }
  if (step.else !== undefined) {
    run.log.push(`${stored.step.key}: else → ${step.else}`);
    return continueWith(step.else);
  }
  run.dialog.status = 'manual';
  run.log.push(`${stored.step.key}: no branch matched and no else; dialog set to manual`);
  return { kind: 'manual' };
}

/** Clamps the random source into [0, 1). */
function unit(value: number): number {
  if (!Number.isFinite(value) || value < 0) return 0;
  return value < 1 ? value : 1 - Number.EPSILON;
}

/** A variant chosen with probability weight / total weight (non-positive weights never win). */
export function runAbSplit(run: RunState, stored: EngineStep, step: AbSplitStep): StepOutcome {
  const variants = step.variants.filter((variant) => Number.isFinite(variant.weight) && variant.weight > 0);
  const total = variants.reduce((sum, variant) => sum + variant.weight, 0);
  if (variants.length === 0 || !(total > 0)) {
    run.log.push(`${stored.step.key}: no variant with a positive weight`);
    return continueWith(undefined);
  }
  const point = unit(run.random()) * total;
  let reached = 0;
  let chosen = variants[variants.length - 1]!;
  for (const variant of variants) {
    reached += variant.weight;
    if (point < reached) {
      chosen = variant;
      break;
    }
  }
  run.log.push(`${stored.step.key}: variant → ${chosen.next}`);
  return continueWith(chosen.next);
}
