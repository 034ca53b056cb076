import type { z } from 'zod';
import { formatPath, type PathSegment } from './problem-path.js';
import type { ScriptProblem } from './types.js';

const EXPECTED: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'a boolean',
  array: 'an array',
  object: 'an object',
  record: 'an object',
};

const UNIT: Record<string, string> = { string: 'characters', array: 'items' };

function sizeMessage(bound: 'most' | 'least', origin: string, limit: number | bigint): string {
  const unit = UNIT[origin];
  if (unit && bound === 'least' && Number(limit) === 1) return 'must not be empty';
  if (unit) return `must have at ${bound} ${limit} ${unit}`;
  return `must be at ${bound} ${limit}`;
}

/** Readable messages for zod's built-in issues; messages set on a schema take precedence. */
export const problemErrorMap: z.core.$ZodErrorMap = (issue) => {
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return 'is required';
      return `must be ${EXPECTED[issue.expected] ?? issue.expected}`;
    case 'too_big':
      return sizeMessage('most', issue.origin, issue.maximum);
    case 'too_small':
      return sizeMessage('least', issue.origin, issue.minimum);
    case 'invalid_value':
      return `must be one of ${issue.values.map((value) => JSON.stringify(value)).join(', ')}`;
    default:
      return undefined;
  }
};

/** One problem per zod issue (one per unknown property), paths prefixed with where the value sits. */
export function issuesToProblems(
  issues: readonly z.core.$ZodIssue[],
  prefix: readonly PathSegment[],
  step: string | undefined,
): ScriptProblem[] {
  const problems: ScriptProblem[] = [];
  const add = (path: readonly PropertyKey[], message: string) => {
    const segments = [...prefix, ...path.map((s) => (typeof s === 'number' ? s : String(s)))];
    problems.push({ ...(step === undefined ? {} : { step }), path: formatPath(segments), message });
  };
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) add([...issue.path, key], 'unknown property');
    } else if (issue.code === 'invalid_key') {
      add(issue.path, `invalid key: ${issue.issues[0]?.message ?? issue.message}`);
    } else {
      add(issue.path, issue.message);
    }
  }
  return problems;
}
