/**
 * The isolated Handlebars environment all templates compile and run in.
 * Nothing here touches the global Handlebars instance.
 */
import Handlebars from 'handlebars';
import { budgetedHelperCall, budgetedIteration } from './budget.js';
import { TemplateError } from './errors.js';
import { type BagValue, emptyBag, plainText } from './values.js';

/** How each allowed helper may be used: as a block or inline, and with how many arguments. */
export const HELPERS: ReadonlyMap<string, { block: boolean; params: number }> = new Map([
  ['if', { block: true, params: 1 }],
  ['unless', { block: true, params: 1 }],
  ['each', { block: true, params: 1 }],
  ['with', { block: true, params: 1 }],
  ['eq', { block: false, params: 2 }],
]);

export const hb = Handlebars.create();

// Built-ins that are not allowed: `log` writes to the console, `lookup` does dynamic property access.
hb.unregisterHelper('log');
hb.unregisterHelper('lookup');

type HelperFn = (this: unknown, ...args: unknown[]) => unknown;
type BlockOptions = Handlebars.HelperOptions;

function builtin(name: string): HelperFn {
  const helper = hb.helpers[name] as HelperFn | undefined;
  if (helper === undefined) throw new Error(`Handlebars has no built-in "${name}" helper`);
  return helper;
}

/** Registers a helper whose every call is counted against the render budget (see budget.ts). */
function registerCounted(name: string, helper: HelperFn): void {
  hb.registerHelper(name, function (this: unknown, ...args: unknown[]) {
    budgetedHelperCall();
    return helper.apply(this, args);
  });
}

const builtinEach = builtin('each');

// `each`, with every iteration counted as well. `{{#list}}…{{/list}}` sections
// over arrays end up here too: blockHelperMissing calls helpers.each.
registerCounted('each', function (this: unknown, ...args: unknown[]) {
  const options = args[args.length - 1] as BlockOptions | undefined;
  if (args.length === 2 && options !== undefined && typeof options.fn === 'function') {
    const fn = options.fn;
    const counted: BlockOptions = {
      ...options,
      fn: (context: unknown, runtime?: Handlebars.RuntimeOptions) => budgetedIteration(() => fn(context, runtime)),
    };
    return builtinEach.call(this, args[0], counted);
  }
  return builtinEach.apply(this, args);
});

for (const name of ['if', 'unless', 'with', 'blockHelperMissing']) {
  registerCounted(name, builtin(name));
}

// `{{#if (eq a b)}}`: compares the values' plain (unencoded) text.
registerCounted('eq', function (...args: unknown[]) {
  if (args.length !== 3) throw new TemplateError('eq needs exactly two arguments');
  return plainText(args[0]) === plainText(args[1]);
});

type CompileOptions = NonNullable<Parameters<typeof Handlebars.compile>[1]>;

export const COMPILE_OPTIONS: CompileOptions = {
  knownHelpersOnly: true,
  knownHelpers: {
    helperMissing: false,
    blockHelperMissing: false,
    log: false,
    lookup: false,
    if: true,
    unless: true,
    each: true,
    with: true,
    eq: true,
  },
  strict: false,
  assumeObjects: false,
  compat: false,
  // Values are encoded by us, once, for the template's mode (see values.ts).
  noEscape: true,
};

/**
 * Runtime options for one render: no prototype access, no helperMissing calls,
 * and an `@data` frame that, like every context object, has no reachable
 * prototype members and prints as "" (`{{@_parent}}`).
 */
export function runtimeOptions(root: BagValue): Handlebars.RuntimeOptions {
  return {
    data: Object.assign(emptyBag(), { root }),
    allowProtoPropertiesByDefault: false,
    allowProtoMethodsByDefault: false,
    allowedProtoProperties: {},
    allowedProtoMethods: {},
    allowCallsToHelperMissing: false,
  };
}
