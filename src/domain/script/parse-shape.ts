import { isValidKey, keySchema } from '../keys.js';
import { stepPath } from './problem-path.js';
import { documentSchema, type ParsedStep, STEP_SCHEMAS } from './step-schemas.js';
import { type ConversionRule, type ScriptProblem, STEP_TYPES, type StepType } from './types.js';
import { issuesToProblems, problemErrorMap } from './zod-problems.js';

export interface StepEntry {
  index: number;
  /** The step's key when it is a valid key, even if the rest of the step is broken. */
  key?: string;
  /** Present when the step passed the shape check. */
  step?: ParsedStep;
}

export interface ShapeResult {
  problems: ScriptProblem[];
  /** The start key when it is a valid key. */
  start?: string;
  /** Every step, in document order; empty when `steps` could not be read as a bounded array. */
  entries: StepEntry[];
  /** The document itself passed its shape check (start valid, steps a non-empty bounded array). */
  documentValid: boolean;
  /** The conversion rules, when the document passed its shape check and has any. */
  onConversion?: ConversionRule[];
}

const STEP_SCHEMA_BY_TYPE: ReadonlyMap<string, (typeof STEP_SCHEMAS)[StepType]> = new Map(
  STEP_TYPES.map((type) => [type, STEP_SCHEMAS[type]]),
);

const UNKNOWN_TYPE_HINT = `expected one of ${STEP_TYPES.join(', ')}`;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseStep(raw: unknown, index: number): { entry: StepEntry; problems: ScriptProblem[] } {
  if (!isRecord(raw)) {
    return { entry: { index }, problems: [{ path: stepPath(index), message: 'must be an object' }] };
  }
  const key = isValidKey(raw.key) ? raw.key : undefined;
  const stepRef = key === undefined ? {} : { step: key };
  const schema = typeof raw.type === 'string' ? STEP_SCHEMA_BY_TYPE.get(raw.type) : undefined;
  if (schema === undefined) {
    const problems = issuesToProblems(
      keySchema.safeParse(raw.key, { error: problemErrorMap }).error?.issues ?? [],
      ['steps', index, 'key'],
      undefined,
    );
    const message =
      raw.type === undefined ? 'is required' : `unknown step type ${JSON.stringify(raw.type)}; ${UNKNOWN_TYPE_HINT}`;
    problems.push({ ...stepRef, path: stepPath(index, 'type'), message });
    return { entry: { index, ...(key === undefined ? {} : { key }) }, problems };
  }
  const parsed = schema.safeParse(raw, { error: problemErrorMap });
  if (!parsed.success) {
    return {
      entry: { index, ...(key === undefined ? {} : { key }) },
      problems: issuesToProblems(parsed.error.issues, ['steps', index], key),
    };
  }
  return { entry: { index, key: parsed.data.key, step: parsed.data }, problems: [] };
}

/** Checks the shape of the document and of each step separately, so every step's problems are found. */
export function parseShape(input: unknown, maxSteps: number): ShapeResult {
  const parsed = documentSchema(maxSteps).safeParse(input, { error: problemErrorMap });
  const problems = parsed.success ? [] : issuesToProblems(parsed.error.issues, [], undefined);
  if (!isRecord(input)) return { problems, entries: [], documentValid: false };

  const start = isValidKey(input.start) ? input.start : undefined;
  const entries: StepEntry[] = [];
  const rawSteps = input.steps;
  if (Array.isArray(rawSteps) && rawSteps.length <= maxSteps) {
    rawSteps.forEach((raw: unknown, index) => {
      const result = parseStep(raw, index);
      entries.push(result.entry);
      problems.push(...result.problems);
    });
  }
  const onConversion = parsed.success ? parsed.data.onConversion : undefined;
  return {
    problems,
    ...(start === undefined ? {} : { start }),
    ...(onConversion === undefined ? {} : { onConversion }),
    entries,
    documentValid: parsed.success,
  };
}
