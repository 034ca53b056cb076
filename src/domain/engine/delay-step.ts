/** `delay`: schedule the continuation and wait. */
import type { DelayStep } from '../script/types.js';
import { isValidTimeZone, nextOccurrence } from './next-occurrence.js';
import { StepError, type RunState, type StepOutcome } from './run-state.js';
import type { EngineStep } from './types.js';

function runAtOf(run: RunState, stored: EngineStep, step: DelayStep): Date {
  if (step.seconds !== undefined) {
    if (!Number.isFinite(step.seconds) || step.seconds < 0) throw new StepError(`invalid delay of ${step.seconds} s`);
    return new Date(run.now.getTime() + step.seconds * 1000);
  }
  if (step.until !== undefined) {
    let timezone = run.timezone;
    if (!isValidTimeZone(timezone)) {
      run.log.push(`${stored.step.key}: unknown time zone "${timezone}", using UTC`);
      timezone = 'UTC';
    }
    try {
      return nextOccurrence(step.until, timezone, run.now);
    } catch (error) {
      if (error instanceof RangeError) throw new StepError(error.message);
      throw error;
    }
  }
  throw new StepError('delay has neither seconds nor until');
}

export function runDelay(run: RunState, stored: EngineStep, step: DelayStep): StepOutcome {
  const runAt = runAtOf(run, stored, step);
  let nextStepId: string | null = null;
  if (step.next !== undefined) {
    const next = run.script.byKey(step.next);
    if (next === undefined) run.log.push(`${stored.step.key}: next step "${step.next}" does not exist`);
    nextStepId = next?.id ?? null;
  }
  run.effects.push({ type: 'schedule', stepId: stored.id, nextStepId, runAt });
  run.log.push(`${stored.step.key}: wait until ${runAt.toISOString()}`);
  return { kind: 'wait', stop: 'waiting_delay', finish: true };
}
