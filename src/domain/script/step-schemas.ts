import { z } from 'zod';
import { isForbiddenKey, keySchema } from '../keys.js';
import { SCRIPT_LIMITS as L } from './limits.js';
import { boundedRecord } from './record-schema.js';
import { CONDITION_OPS, DIALOG_STATUSES, type Step, type StepType, WEBHOOK_METHODS } from './types.js';

/** Shapes only; cross-field and cross-step rules live in the semantic checks. */

const text = (max: number) => z.string().min(1).max(max);

const scalarValue = (maxLength: number) =>
  z
    .union([z.string(), z.number(), z.boolean()], { error: 'must be a string, a number or a boolean' })
    .refine((value) => typeof value !== 'string' || value.length <= maxLength, {
      error: `must be at most ${maxLength} characters`,
    });

const base = {
  key: keySchema,
  next: keySchema.optional(),
  finishStatus: z.enum(DIALOG_STATUSES).optional(),
};

const button = z.strictObject({
  text: text(L.buttonTextLength),
  next: keySchema.optional(),
  url: text(L.urlLength).optional(),
});

const sendMessage = z.strictObject({
  ...base,
  type: z.literal('send_message'),
  text: text(L.textLength),
  buttons: z.array(button).max(L.maxButtons).optional(),
});

const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;
const headerName = z.string().max(L.headerNameLength).regex(HEADER_NAME, 'must be a valid HTTP header name');
const headerValue = z
  .string()
  .max(L.headerValueLength)
  .refine((value) => !/[\r\n]/.test(value), { error: 'must not contain line breaks' });

const sendWebhook = z.strictObject({
  ...base,
  type: z.literal('send_webhook'),
  method: z.enum(WEBHOOK_METHODS),
  url: text(L.urlLength),
  body: z.string().max(L.bodyLength).optional(),
  headers: boundedRecord(headerName, headerValue, L.maxHeaders).optional(),
});

const delay = z.strictObject({
  ...base,
  type: z.literal('delay'),
  seconds: z.number().optional(),
  until: z.string().max(5).optional(),
});

const SUBJECT = /^(?:tags|(?:fields|tracker)\.([A-Za-z0-9_.-]{1,64}))$/;
const subject = z
  .string()
  .regex(SUBJECT, 'must be "tags", "fields.<key>" or "tracker.<key>"')
  .refine((value) => !isForbiddenKey(value.slice(value.indexOf('.') + 1)), {
    error: 'names a forbidden key',
  });

const condition = z.strictObject({
  subject,
  op: z.enum(CONDITION_OPS),
  value: scalarValue(L.conditionValueLength).optional(),
});

const branch = z.strictObject({
  when: z.array(condition).min(1).max(L.maxConditionsPerBranch),
  next: keySchema,
});

const conditionStep = z.strictObject({
  ...base,
  type: z.literal('condition'),
  branches: z.array(branch).max(L.maxBranches).optional(),
  else: keySchema.optional(),
});

const input = z.strictObject({
  ...base,
  type: z.literal('input'),
  text: text(L.textLength),
  field: keySchema,
});

const tagList = z.array(keySchema).max(L.maxTagsPerChange);
const changeTags = z.strictObject({
  ...base,
  type: z.literal('change_tags'),
  add: tagList.optional(),
  remove: tagList.optional(),
});

const setFields = z.strictObject({
  ...base,
  type: z.literal('set_fields'),
  fields: boundedRecord(keySchema, scalarValue(L.fieldValueLength), L.maxFields),
});

const setStatus = z.strictObject({
  ...base,
  type: z.literal('set_status'),
  status: z.enum(DIALOG_STATUSES),
});

const abSplit = z.strictObject({
  ...base,
  type: z.literal('ab_split'),
  variants: z
    .array(z.strictObject({ weight: z.number(), next: keySchema }))
    .min(1)
    .max(L.maxVariants),
});

export const STEP_SCHEMAS = {
  send_message: sendMessage,
  send_webhook: sendWebhook,
  delay,
  condition: conditionStep,
  input,
  change_tags: changeTags,
  set_fields: setFields,
  set_status: setStatus,
  ab_split: abSplit,
} as const satisfies Record<StepType, z.ZodType>;

/** A step that passed the shape check but not necessarily the semantic checks. */
export type ParsedStep = { [T in StepType]: z.output<(typeof STEP_SCHEMAS)[T]> }[StepType];

/** What a conversion does to its dialog (API.md §5 `onConversion`): the first rule that matches. */
const conversionRule = z.strictObject({
  event: z
    .string()
    .regex(/^[A-Za-z0-9_.:-]{1,100}$/, 'must be 1-100 characters of A-Z, a-z, 0-9, "_", ".", ":" or "-"')
    .optional(),
  status: z.enum(['lead', 'sale', 'rejected']).optional(),
  next: keySchema.optional(),
  setStatus: z.enum(DIALOG_STATUSES).optional(),
  addTags: z.array(keySchema).max(L.maxTagsPerChange).optional(),
  setFields: boundedRecord(keySchema, scalarValue(L.fieldValueLength), L.maxFields).optional(),
});

export const documentSchema = (maxSteps: number) =>
  z.strictObject({
    start: keySchema,
    steps: z.array(z.unknown()).min(1).max(maxSteps),
    onConversion: z.array(conversionRule).max(50).optional(),
  });

// Compile-time guard: every normalized Step still fits its shape schema.
const normalizedStepFitsShape = (step: Step): ParsedStep => step;
void normalizedStepFitsShape;
