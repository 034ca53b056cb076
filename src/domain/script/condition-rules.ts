import { isValidKey } from '../keys.js';
import type { ConditionOp, ScalarValue } from './types.js';

type ConditionShape = { subject: string; op: ConditionOp; value?: ScalarValue | undefined };

/**
 * Whether op and value agree. On `tags`: `has` / `not` take a tag text
 * (has it / lacks it) and `exists` means "has any tag"; `is`, `gt`, `lt` do not apply.
 * Returns a message, or null when the condition is fine.
 */
export function checkCondition(condition: ConditionShape): string | null {
  const { subject, op, value } = condition;
  const onTags = subject === 'tags';
  switch (op) {
    case 'exists':
      return value === undefined ? null : '"exists" takes no value';
    case 'gt':
    case 'lt':
      if (onTags) return `"${op}" does not apply to tags`;
      return typeof value === 'number' ? null : `"${op}" needs a number value`;
    case 'has':
    case 'not':
      if (onTags) return isValidKey(value) ? null : `"${op}" on tags needs a tag text as value`;
      if (op === 'has') return typeof value === 'string' ? null : '"has" needs a string value';
      return value === undefined ? '"not" needs a value' : null;
    case 'is':
      if (onTags) return '"is" does not apply to tags; use "has" or "not"';
      return value === undefined ? '"is" needs a value' : null;
  }
}
