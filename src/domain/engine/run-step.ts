/** Runs one step of any type. */
import { runDelay } from './delay-step.js';
import { runChangeTags, runSetFields, runSetStatus } from './dialog-steps.js';
import { runAbSplit, runCondition } from './flow-steps.js';
import { runInputPrompt, runSendMessage } from './message-steps.js';
import type { RunState, StepOutcome } from './run-state.js';
import type { EngineStep } from './types.js';
import { runSendWebhook } from './webhook-step.js';

export function runStep(run: RunState, stored: EngineStep): StepOutcome {
  const { step } = stored;
  switch (step.type) {
    case 'send_message':
      return runSendMessage(run, stored, step);
    case 'input':
      return runInputPrompt(run, stored, step);
    case 'send_webhook':
      return runSendWebhook(run, stored, step);
    case 'delay':
      return runDelay(run, stored, step);
    case 'condition':
      return runCondition(run, stored, step);
    case 'ab_split':
      return runAbSplit(run, stored, step);
    case 'change_tags':
      return runChangeTags(run, stored, step);
    case 'set_fields':
      return runSetFields(run, stored, step);
    case 'set_status':
      return runSetStatus(run, stored, step);
  }
}
