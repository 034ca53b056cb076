export { compileTemplate, checkTemplate, renderTemplate, clearTemplateCache } from './compile.js';
export { TemplateError } from './errors.js';
export {
  MAX_TEMPLATE_BYTES,
  MAX_RENDER_LENGTH,
  MAX_EACH_ITERATIONS,
  MAX_HELPER_CALLS,
  TEMPLATE_CACHE_SIZE,
  FIELD_KEY_PATTERN,
} from './limits.js';
export { TEMPLATE_MODES } from './types.js';
export type { CompiledTemplate, FieldValue, TemplateContext, TemplateMode } from './types.js';
