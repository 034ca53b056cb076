/**
 * Per-render limits for loops.
 *
 * Why this bounds a render: every value is flat (a scalar or a list of
 * scalars) and is encoded once, before rendering, so printing it only appends
 * an existing string. Work and output are therefore proportional to
 * (template size) x (number of times a block body runs), and only `{{#each}}`
 * (directly, or via a `{{#list}}…{{/list}}` section) runs a body more than
 * once. Nested loops multiply, so every iteration of every loop in the render
 * is counted against MAX_EACH_ITERATIONS, and the text the iterations produce
 * (nested loops counted once) against MAX_RENDER_LENGTH, so a huge string is
 * never built. Helper calls are the costly nodes inside a loop body, so they
 * are counted too (MAX_HELPER_CALLS). The caller checks the final output length.
 */
import { TemplateError } from './errors.js';
import { MAX_EACH_ITERATIONS, MAX_HELPER_CALLS, MAX_RENDER_LENGTH } from './limits.js';

class RenderBudget {
  private helperCalls = 0;
  private iterations = 0;
  private output = 0;
  /** For each iteration in progress: length of the nested iterations' text already counted. */
  private readonly open: number[] = [];

  helperCall(): void {
    this.helperCalls += 1;
    if (this.helperCalls > MAX_HELPER_CALLS) {
      throw new TemplateError(`Template called helpers more than ${MAX_HELPER_CALLS} times in one render`);
    }
  }

  iterate(run: () => string): string {
    this.iterations += 1;
    if (this.iterations > MAX_EACH_ITERATIONS) {
      throw new TemplateError(`Template loops ran more than ${MAX_EACH_ITERATIONS} iterations in one render`);
    }
    this.open.push(0);
    let text: string;
    let counted = 0;
    try {
      text = run();
    } finally {
      counted = this.open.pop() ?? 0;
    }
    this.output += text.length - counted;
    const parent = this.open.length - 1;
    if (parent >= 0) this.open[parent] = (this.open[parent] ?? 0) + text.length;
    if (this.output > MAX_RENDER_LENGTH) {
      throw new TemplateError(`Rendered text is longer than ${MAX_RENDER_LENGTH} characters`);
    }
    return text;
  }
}

let active: RenderBudget | undefined;

/** Runs one render with a fresh budget. Renders are synchronous, so one active budget suffices. */
export function withRenderBudget<T>(render: () => T): T {
  const previous = active;
  active = new RenderBudget();
  try {
    return render();
  } finally {
    active = previous;
  }
}

function current(): RenderBudget {
  if (active === undefined) throw new TemplateError('Template rendered outside of a render budget');
  return active;
}

/** Counts one helper call against the active render's budget. */
export function budgetedHelperCall(): void {
  current().helperCall();
}

/** Runs one loop iteration against the active render's budget. */
export function budgetedIteration(run: () => string): string {
  return current().iterate(run);
}
