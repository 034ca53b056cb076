import { stepPath } from './problem-path.js';
import type { ParsedStep } from './step-schemas.js';

export interface Transition {
  /** Key of the step this transition leads to. */
  target: string;
  /** Where the reference is written, e.g. `steps[3].branches[0].next`. */
  path: string;
  /** Followed without waiting for time to pass or for the user. */
  automatic: boolean;
}

/**
 * A step after which the dialog waits: for time (`delay`), for a reply (`input`),
 * or for a button press (`send_message` with `next` buttons and no own `next`).
 */
export function isWaitingStep(step: ParsedStep): boolean {
  switch (step.type) {
    case 'delay':
    case 'input':
      return true;
    case 'send_message':
      return step.next === undefined && (step.buttons ?? []).some((button) => button.next !== undefined);
    default:
      return false;
  }
}

/** Every reference from `step` (at position `index`) to another step, in document order. */
export function stepTransitions(step: ParsedStep, index: number): Transition[] {
  const waits = isWaitingStep(step);
  const transitions: Transition[] = [];
  if (step.next !== undefined) {
    transitions.push({ target: step.next, path: stepPath(index, 'next'), automatic: !waits });
  }
  switch (step.type) {
    case 'send_message':
      (step.buttons ?? []).forEach((button, i) => {
        if (button.next !== undefined) {
          transitions.push({ target: button.next, path: stepPath(index, 'buttons', i, 'next'), automatic: false });
        }
      });
      break;
    case 'condition':
      (step.branches ?? []).forEach((branch, i) => {
        transitions.push({ target: branch.next, path: stepPath(index, 'branches', i, 'next'), automatic: true });
      });
      if (step.else !== undefined) {
        transitions.push({ target: step.else, path: stepPath(index, 'else'), automatic: true });
      }
      break;
    case 'ab_split':
      step.variants.forEach((variant, i) => {
        transitions.push({ target: variant.next, path: stepPath(index, 'variants', i, 'next'), automatic: true });
      });
      break;
    default:
      break;
  }
  return transitions;
}
