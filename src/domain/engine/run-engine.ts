/** The pure script engine: one trigger in, effects and dialog changes out. */
import { TemplateError } from '../../templates/index.js';
import { ScriptIndex } from './script-index.js';
import { continueWith, StepError, type RunState, type StepOutcome } from './run-state.js';
import { runStep } from './run-step.js';
import {
  DEFAULT_MAX_STEPS,
  type EngineInput,
  type EngineResult,
  type EngineStep,
  type StopReason,
  type Trigger,
} from './types.js';
import { WorkingDialog } from './working-dialog.js';

type Next = { step: EngineStep } | { stop: StopReason };

function stepLimit(maxSteps: number | undefined): number {
  if (maxSteps === undefined || !Number.isFinite(maxSteps)) return DEFAULT_MAX_STEPS;
  return Math.max(1, Math.floor(maxSteps));
}

/** After a step: its finishStatus, then whether and where the run goes on. */
function proceed(run: RunState, stored: EngineStep, outcome: StepOutcome): Next {
  if (outcome.kind === 'manual') return { stop: 'manual' };
  const { finishStatus, key } = stored.step;
  if (
    (outcome.kind === 'continue' || outcome.finish) &&
    finishStatus !== undefined &&
    finishStatus !== run.dialog.status
  ) {
    run.dialog.status = finishStatus;
    run.log.push(`${key}: finish status ${finishStatus}`);
  }
  if (run.dialog.status !== 'auto') return { stop: run.dialog.status };
  if (outcome.kind === 'wait') return { stop: outcome.stop };
  if (outcome.next === undefined) return { stop: 'end' };
  const next = run.script.byKey(outcome.next);
  if (next === undefined) {
    run.log.push(`${key}: next step "${outcome.next}" does not exist; the run ends`);
    return { stop: 'end' };
  }
  return { step: next };
}

function limitReached(run: RunState, ran: readonly string[], upcoming: string, limit: number): StopReason {
  run.dialog.status = 'manual';
  const keys = [...new Set(ran)].join(', ');
  run.log.push(
    `step limit of ${limit} reached before "${upcoming}"; steps run: ${keys} (${ran.length} runs); dialog set to manual`,
  );
  return 'step_limit';
}

/** Runs steps from `first` until one waits, the script ends, the status leaves auto or the limit is hit. */
function runFrom(run: RunState, first: EngineStep, limit: number): StopReason {
  const ran: string[] = [];
  let current = first;
  for (;;) {
    if (ran.length >= limit) return limitReached(run, ran, current.step.key, limit);
    ran.push(current.step.key);
    run.dialog.stepId = current.id;
    run.log.push(`${current.step.key}: ${current.step.type}`);
    let outcome: StepOutcome;
    try {
      outcome = runStep(run, current);
    } catch (error) {
      if (!(error instanceof TemplateError) && !(error instanceof StepError)) throw error;
      run.dialog.status = 'manual';
      run.log.push(`${current.step.key}: failed: ${error.message}; dialog set to manual`);
      return 'manual';
    }
    const next = proceed(run, current, outcome);
    if ('stop' in next) return next.stop;
    current = next.step;
  }
}

/** Where a trigger starts the run: a first step, or a reason not to run. */
function entry(run: RunState, trigger: Trigger): Next {
  const { script, dialog, log } = run;
  switch (trigger.kind) {
    case 'start': {
      if (dialog.stepId !== null) {
        const preset = script.byId(dialog.stepId);
        if (preset !== undefined) return { step: preset };
        log.push(`start: the dialog's step ${dialog.stepId} no longer exists; using the start step`);
      }
      const start = script.start();
      if (start !== undefined) return { step: start };
      log.push(`start: the start step "${script.script.startKey}" does not exist`);
      return { stop: 'ignored' };
    }
    case 'step': {
      const step = script.byId(trigger.stepId);
      if (step !== undefined) return { step };
      log.push(`step ${trigger.stepId} does not exist`);
      return { stop: 'ignored' };
    }
    case 'button': {
      const stored = script.byId(trigger.stepId);
      const button = stored?.step.type === 'send_message' ? stored.step.buttons?.[trigger.index] : undefined;
      if (stored === undefined || button?.next === undefined) {
        log.push(`button ${trigger.index} of step ${trigger.stepId} does not exist or leads nowhere`);
        return { stop: 'ignored' };
      }
      const target = script.byKey(button.next);
      if (target === undefined) {
        log.push(`${stored.step.key}: button ${trigger.index} leads to "${button.next}", which does not exist`);
        return { stop: 'ignored' };
      }
      log.push(`${stored.step.key}: button ${trigger.index} pressed → ${button.next}`);
      return { step: target };
    }
    case 'text': {
      const stored = dialog.stepId === null ? undefined : script.byId(dialog.stepId);
      if (stored === undefined || stored.step.type !== 'input') {
        log.push('text ignored: the dialog is not waiting for input');
        return { stop: 'ignored' };
      }
      dialog.setField(stored.step.field, trigger.text);
      log.push(`${stored.step.key}: reply stored in field "${stored.step.field}"`);
      return proceed(run, stored, continueWith(stored.step.next));
    }
  }
}

/**
 * Runs the script for one trigger. Pure: no I/O, no clock, no randomness of its own.
 * The dialog runs only while its status is `auto`; a `manual` dialog ignores the user's text
 * (stop `ignored`) and stops with `manual` for other triggers, a `blocked` one stops with `blocked`.
 */
export function runEngine(input: EngineInput): EngineResult {
  const dialog = new WorkingDialog(input.dialog);
  const run: RunState = {
    script: new ScriptIndex(input.script),
    dialog,
    now: input.now,
    timezone: input.timezone,
    random: input.random,
    conversion: input.conversion ?? null,
    effects: [],
    log: [],
  };
  const result = (stop: StopReason): EngineResult => ({
    effects: run.effects,
    changes: dialog.changes(),
    stop,
    log: run.log,
  });

  if (dialog.status !== 'auto') {
    const stop = input.trigger.kind === 'text' && dialog.status === 'manual' ? 'ignored' : dialog.status;
    run.log.push(`${input.trigger.kind} not run: the dialog is ${dialog.status}`);
    return result(stop);
  }
  const first = entry(run, input.trigger);
  if ('stop' in first) return result(first.stop);
  return result(runFrom(run, first.step, stepLimit(input.maxSteps)));
}
