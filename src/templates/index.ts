export { compileTemplate, checkTemplate, renderTemplate, clearTemplateCache } from './compile.js';
export { encodeText, headerSafeText } from './encode.js';
export { TemplateError } from './errors.js';
export { MAX_TEMPLATE_BYTES, MAX_RENDER_LENGTH, MAX_EACH_ITERATIONS, MAX_HELPER_CALLS } from './limits.js';
export type { CompiledTemplate, FieldValue, TemplateContext, TemplateMode } from './types.js';
