import { LruCache } from '../util/lru-cache.js';
import { withRenderBudget } from './budget.js';
import { buildRenderContext } from './context.js';
import { COMPILE_OPTIONS, hb, runtimeOptions } from './environment.js';
import { TemplateError } from './errors.js';
import { MAX_RENDER_LENGTH, MAX_TEMPLATE_BYTES, TEMPLATE_CACHE_SIZE } from './limits.js';
import { type ConvertedTemplate, convertPlaceholders } from './placeholders.js';
import { TEMPLATE_MODES, type CompiledTemplate, type TemplateContext, type TemplateMode } from './types.js';
import { checkTemplateAst } from './validate.js';

type Delegate = (context: unknown, options?: ReturnType<typeof runtimeOptions>) => string;

const cache = new LruCache<string, CompiledTemplate>(TEMPLATE_CACHE_SIZE);

const EMPTY_CONTEXT: TemplateContext = { chatId: '', fields: {}, tracker: {} };

/** Readable names for the Handlebars lexer tokens most often reported in syntax errors. */
const TOKENS: Readonly<Record<string, string>> = {
  INVALID: 'character or unclosed tag',
  CLOSE: '"}}"',
  CLOSE_UNESCAPED: '"}}}"',
  OPEN: '"{{"',
  OPEN_ENDBLOCK: '"{{/"',
  INVERSE: '"{{else}}"',
  ID: 'name',
  SEP: '"." or "/"',
};

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Turns a Handlebars parse/compile error into a TemplateError with a readable message. */
function compileError(error: unknown, converted: ConvertedTemplate): TemplateError {
  if (error instanceof TemplateError) return error;
  if (error instanceof RangeError) return new TemplateError('Template is nested too deeply');
  const message = errorMessage(error);
  const lines = message.split('\n');
  const parse = /^(?:Parse|Lexical) error on line (\d+)/.exec(lines[0] ?? '');
  if (parse) {
    const near = (lines[1] ?? '').trim();
    const got = /got '([^']+)'\s*$/.exec(message)?.[1];
    const what =
      got === undefined
        ? 'unrecognised text'
        : got === 'EOF'
          ? 'the template ends inside a tag or an unclosed {{#block}}'
          : `unexpected ${TOKENS[got] ?? got.toLowerCase().replace(/_/g, ' ')}`;
    return new TemplateError(`Template syntax error: ${what} near "${near}"`, {
      line: Number(parse[1]),
    });
  }
  // Handlebars exceptions tied to a node carry lineNumber / column (0-based) and end with " - line:column".
  const located = error as { lineNumber?: unknown; column?: unknown };
  const text = message.replace(/ - \d+:\d+$/, '');
  if (typeof located.lineNumber === 'number' && typeof located.column === 'number') {
    return new TemplateError(`Template error: ${text}`, converted.locate(located.lineNumber, located.column));
  }
  return new TemplateError(`Template error: ${text}`);
}

function run(delegate: Delegate, mode: TemplateMode, ctx: TemplateContext): string {
  const root = buildRenderContext(ctx, mode);
  const output = withRenderBudget(() => delegate(root, runtimeOptions(root)));
  if (output.length > MAX_RENDER_LENGTH) {
    throw new TemplateError(`Rendered text is longer than ${MAX_RENDER_LENGTH} characters`);
  }
  return output;
}

function render(delegate: Delegate, mode: TemplateMode, ctx: TemplateContext): string {
  try {
    return run(delegate, mode, ctx);
  } catch (error) {
    if (error instanceof TemplateError) throw error;
    throw new TemplateError(`Template failed to render: ${errorMessage(error)}`);
  }
}

function compileUncached(source: string, mode: TemplateMode): CompiledTemplate {
  const bytes = Buffer.byteLength(source, 'utf8');
  if (bytes > MAX_TEMPLATE_BYTES) {
    throw new TemplateError(`Template is too large: ${bytes} bytes, the limit is ${MAX_TEMPLATE_BYTES}`);
  }
  const converted = convertPlaceholders(source);
  let delegate: Delegate;
  try {
    checkTemplateAst(hb.parse(converted.text), converted.locate);
    delegate = hb.compile(converted.text, COMPILE_OPTIONS);
    // Handlebars compiles lazily on first call: a dry run surfaces compile errors now,
    // and refuses templates that exceed the render limits even without data.
    run(delegate, mode, EMPTY_CONTEXT);
  } catch (error) {
    throw compileError(error, converted);
  }
  return Object.freeze({ source, mode, render: (ctx: TemplateContext) => render(delegate, mode, ctx) });
}

/**
 * Compiles a template for one output mode. Cached by (mode, source).
 * @throws TemplateError if it does not parse, uses an unknown helper, partials or decorators, or is too large.
 */
export function compileTemplate(source: string, mode: TemplateMode): CompiledTemplate {
  if (typeof source !== 'string') throw new TemplateError('Template source must be a string');
  if (!TEMPLATE_MODES.includes(mode)) throw new TemplateError(`Unknown template mode "${String(mode)}"`);
  const key = `${mode}\u0000${source}`;
  const cached = cache.get(key);
  if (cached !== undefined) return cached;
  const compiled = compileUncached(source, mode);
  cache.set(key, compiled);
  return compiled;
}

/** Validates a template (e.g. at script upload): the error message, or null if it compiles. */
export function checkTemplate(source: string, mode: TemplateMode): string | null {
  try {
    compileTemplate(source, mode);
    return null;
  } catch (error) {
    if (error instanceof TemplateError) return error.message;
    throw error;
  }
}

/** Compiles (or reuses) and renders in one call. */
export function renderTemplate(source: string, mode: TemplateMode, ctx: TemplateContext): string {
  return compileTemplate(source, mode).render(ctx);
}

/** Drops every cached compiled template. */
export function clearTemplateCache(): void {
  cache.clear();
}
