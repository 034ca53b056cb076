import { FIELD_KEY_PATTERN } from './limits.js';
import type { TemplateContext, TemplateMode } from './types.js';
import { type BagValue, emptyBag, fieldValue, isoDate, scalarValue, setEntry, textValue } from './values.js';

/** Dialog values available by name at the template root. */
export const BUILTIN_NAMES: ReadonlySet<string> = new Set([
  'chatId',
  'username',
  'name',
  'createdAt',
  'stepKey',
  'stepId',
  'status',
]);

/** Root names a custom field cannot shadow. */
const RESERVED_ROOT_NAMES: ReadonlySet<string> = new Set([
  ...BUILTIN_NAMES,
  'fields',
  'tracker',
  'conversion',
  'destination',
]);

function bagOf(mode: TemplateMode, record: Record<string, unknown> | null | undefined): BagValue {
  const bag = emptyBag();
  if (typeof record !== 'object' || record === null) return bag;
  for (const key of Object.keys(record)) {
    if (FIELD_KEY_PATTERN.test(key)) setEntry(bag, key, fieldValue(mode, record[key]));
  }
  return bag;
}

/**
 * Builds the safe, pre-encoded object a template is rendered against: the
 * built-in dialog values, `fields` and `tracker`, and every custom field again
 * at the root (unless it collides with a built-in) so `{{refID}}` means
 * `{{fields.refID}}`.
 */
export function buildRenderContext(ctx: TemplateContext, mode: TemplateMode): BagValue {
  const root = emptyBag();
  setEntry(root, 'chatId', scalarValue(mode, ctx.chatId));
  setEntry(root, 'username', scalarValue(mode, ctx.username));
  setEntry(root, 'name', scalarValue(mode, ctx.name));
  const createdAt = isoDate(ctx.createdAt);
  setEntry(root, 'createdAt', createdAt === null ? null : textValue(mode, createdAt));
  setEntry(root, 'stepKey', scalarValue(mode, ctx.stepKey));
  setEntry(root, 'stepId', scalarValue(mode, ctx.stepId));
  setEntry(root, 'status', scalarValue(mode, ctx.status));

  const fields = bagOf(mode, ctx.fields);
  setEntry(root, 'fields', fields);
  setEntry(root, 'tracker', bagOf(mode, ctx.tracker));
  if (ctx.conversion) setEntry(root, 'conversion', bagOf(mode, ctx.conversion));
  if (ctx.destination) {
    const { click, ...rest } = ctx.destination;
    const destination = bagOf(mode, rest);
    setEntry(destination, 'click', bagOf(mode, click as Record<string, unknown>));
    setEntry(root, 'destination', destination);
  }
  for (const key of Object.keys(fields)) {
    if (!RESERVED_ROOT_NAMES.has(key)) setEntry(root, key, fields[key] ?? null);
  }
  return root;
}
