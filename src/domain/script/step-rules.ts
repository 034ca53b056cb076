import { checkCondition } from './condition-rules.js';
import { SCRIPT_LIMITS } from './limits.js';
import { stepPath } from './problem-path.js';
import type { ParsedStep } from './step-schemas.js';
import type { ScriptProblem } from './types.js';
import { isHttpUrl } from '../urls.js';

type Found = { path: string; message: string };
type StepOf<T extends ParsedStep['type']> = Extract<ParsedStep, { type: T }>;

const HH_MM = /^(?:[01]\d|2[0-3]):[0-5]\d$/;

function buttonRules(step: StepOf<'send_message'>, index: number): Found[] {
  const found: Found[] = [];
  (step.buttons ?? []).forEach((button, i) => {
    if (button.next !== undefined && button.url !== undefined) {
      found.push({ path: stepPath(index, 'buttons', i), message: 'must have either next or url, not both' });
    } else if (button.next === undefined && button.url === undefined) {
      found.push({ path: stepPath(index, 'buttons', i), message: 'must have next or url' });
    } else if (button.url !== undefined && !isHttpUrl(button.url)) {
      found.push({ path: stepPath(index, 'buttons', i, 'url'), message: 'must be an http(s) URL' });
    }
  });
  return found;
}

function webhookRules(step: StepOf<'send_webhook'>, index: number): Found[] {
  const found: Found[] = [];
  if (!/^https?:\/\//i.test(step.url)) {
    found.push({ path: stepPath(index, 'url'), message: 'must start with http:// or https://' });
  }
  if (step.method === 'GET' && step.body !== undefined) {
    found.push({ path: stepPath(index, 'body'), message: 'a GET request takes no body' });
  }
  return found;
}

function delayRules(step: StepOf<'delay'>, index: number): Found[] {
  const { seconds, until } = step;
  if (seconds !== undefined && until !== undefined) {
    return [{ path: stepPath(index), message: 'takes either seconds or until, not both' }];
  }
  if (seconds !== undefined) {
    const max = SCRIPT_LIMITS.maxDelaySeconds;
    return Number.isInteger(seconds) && seconds >= 1 && seconds <= max
      ? []
      : [{ path: stepPath(index, 'seconds'), message: `must be a whole number from 1 to ${max} (31 days)` }];
  }
  if (until !== undefined) {
    return HH_MM.test(until)
      ? []
      : [{ path: stepPath(index, 'until'), message: 'must be a time as HH:MM, 00:00 to 23:59' }];
  }
  return [{ path: stepPath(index), message: 'needs seconds or until' }];
}

function splitRules(step: StepOf<'ab_split'>, index: number): Found[] {
  const found: Found[] = [];
  const max = SCRIPT_LIMITS.maxWeight;
  step.variants.forEach((variant, i) => {
    if (!(variant.weight > 0) || variant.weight > max) {
      found.push({
        path: stepPath(index, 'variants', i, 'weight'),
        message: `must be greater than 0 and at most ${max}`,
      });
    }
  });
  const total = step.variants.reduce((sum, variant) => sum + variant.weight, 0);
  if (found.length === 0 && !(total > 0)) {
    found.push({ path: stepPath(index, 'variants'), message: 'weights must add up to more than 0' });
  }
  return found;
}

function tagRules(step: StepOf<'change_tags'>, index: number): Found[] {
  const add = step.add ?? [];
  const remove = step.remove ?? [];
  if (add.length === 0 && remove.length === 0) {
    return [{ path: stepPath(index), message: 'must add or remove at least one tag' }];
  }
  const added = new Set(add);
  return remove.flatMap((tag, i) =>
    added.has(tag) ? [{ path: stepPath(index, 'remove', i), message: `tag "${tag}" is both added and removed` }] : [],
  );
}

function fieldRules(step: StepOf<'set_fields'>, index: number): Found[] {
  return Object.keys(step.fields).length === 0
    ? [{ path: stepPath(index, 'fields'), message: 'must set at least one field' }]
    : [];
}

function conditionRules(step: StepOf<'condition'>, index: number): Found[] {
  const found: Found[] = [];
  (step.branches ?? []).forEach((branch, b) => {
    branch.when.forEach((condition, c) => {
      const message = checkCondition(condition);
      if (message !== null) found.push({ path: stepPath(index, 'branches', b, 'when', c), message });
    });
  });
  return found;
}

function rulesFor(step: ParsedStep, index: number): Found[] {
  switch (step.type) {
    case 'send_message':
      return buttonRules(step, index);
    case 'send_webhook':
      return webhookRules(step, index);
    case 'delay':
      return delayRules(step, index);
    case 'condition':
      return conditionRules(step, index);
    case 'ab_split':
      return splitRules(step, index);
    case 'change_tags':
      return tagRules(step, index);
    case 'set_fields':
      return fieldRules(step, index);
    case 'input':
    case 'set_status':
      return [];
  }
}

/** Rules inside one structurally valid step that its shape cannot express. */
export function checkStepRules(step: ParsedStep, index: number): ScriptProblem[] {
  return rulesFor(step, index).map((found) => ({ step: step.key, ...found }));
}
