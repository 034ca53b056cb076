import type Router from '@koa/router';
import type { Context } from 'koa';
import type { BotRecord } from '../../db/bots.js';
import { DomainError } from '../../domain/errors.js';
import type { ScriptProblem } from '../../domain/script/index.js';
import { saveScript, scriptDocument } from '../../http/routes/script.js';
import { csrfInput } from '../csrf.js';
import { each, html, type SafeHtml } from '../html.js';
import { sendPage, withNotice } from '../layout.js';
import type { ConsoleDeps } from '../deps.js';
import { botOf, formOf, sessionOf } from '../state.js';
import { botCrumbs, botPath } from './bots.js';

/** The problems of one step (by its index in `steps`), or of the document as a whole (index null). */
export interface ProblemGroup {
  index: number | null;
  /** The step's key, when it has a valid one. */
  step: string | undefined;
  problems: Array<{ path: string; message: string }>;
}

const STEP_PATH = /^steps\[(\d+)\](.*)$/;

/** Groups problems by the step they are in (in step order), the document's own problems first. */
export function groupProblems(problems: readonly ScriptProblem[]): ProblemGroup[] {
  const general: ProblemGroup = { index: null, step: undefined, problems: [] };
  const byStep = new Map<number, ProblemGroup>();
  for (const problem of problems) {
    const match = STEP_PATH.exec(problem.path);
    if (!match) {
      general.problems.push({ path: problem.path, message: problem.message });
      continue;
    }
    const index = Number(match[1]);
    const group = byStep.get(index) ?? { index, step: problem.step, problems: [] };
    group.step ??= problem.step;
    group.problems.push({ path: problem.path, message: problem.message });
    byStep.set(index, group);
  }
  const steps = [...byStep.values()].sort((a, b) => a.index! - b.index!);
  return general.problems.length > 0 ? [general, ...steps] : steps;
}

interface OutlineStep {
  index: number;
  key: string | undefined;
  type: string | undefined;
  problems: ProblemGroup['problems'];
}

/** Every step of the (submitted) document, each with its problems; steps only problems name come last. */
function outlineOf(document: unknown, groups: readonly ProblemGroup[]): OutlineStep[] {
  const steps = (document as { steps?: unknown } | null)?.steps;
  const list = Array.isArray(steps) ? (steps as unknown[]) : [];
  const byIndex = new Map(groups.filter((group) => group.index !== null).map((group) => [group.index!, group]));
  const text = (value: unknown) => (typeof value === 'string' ? value : undefined);
  const outline: OutlineStep[] = list.map((step, index) => {
    const fields = typeof step === 'object' && step !== null ? (step as Record<string, unknown>) : {};
    return { index, key: text(fields.key), type: text(fields.type), problems: byIndex.get(index)?.problems ?? [] };
  });
  for (const [index, group] of byIndex)
    if (index >= list.length) outline.push({ index, key: group.step, type: undefined, problems: group.problems });
  return outline;
}

function problemSummary(groups: readonly ProblemGroup[]): SafeHtml {
  const count = groups.reduce((sum, group) => sum + group.problems.length, 0);
  const general = groups.find((group) => group.index === null)?.problems ?? [];
  const inSteps = count - general.length;
  return html`<section class="problems" id="script-problems" aria-labelledby="problems-heading" role="alert">
    <h2 id="problems-heading">The script has ${count} problem${count === 1 ? '' : 's'}; nothing was saved</h2>
    ${
      general.length > 0
        ? html`<ul class="general-problems">
            ${each(general, (problem) => html`<li>${problem.path ? html`<code class="path">${problem.path}</code> ` : null}${problem.message}</li>`)}
          </ul>`
        : null
    }
    ${inSteps > 0 ? html`<p><a href="#steps-heading">${inSteps} ${inSteps === 1 ? 'is' : 'are'} shown with ${inSteps === 1 ? 'its step' : 'their steps'}</a>.</p>` : null}
  </section>`;
}

function stepOutline(outline: readonly OutlineStep[]): SafeHtml {
  return html`<section class="step-outline" aria-labelledby="steps-heading">
    <h2 id="steps-heading">Steps</h2>
    ${
      outline.length === 0
        ? html`<p>No steps to show.</p>`
        : html`<ol>
            ${each(
              outline,
              (step) =>
                html`<li class="step${step.problems.length > 0 ? ' has-problems' : ''}" data-step-index="${step.index}">
                  <h3>
                    Step
                    ${step.index + 1}${step.key ? html` · <code>${step.key}</code>` : null}${step.type ? html` <span class="path">${step.type}</span>` : null}
                  </h3>
                  ${
                    step.problems.length > 0
                      ? html`<ul class="step-problems">
                          ${each(step.problems, (problem) => html`<li><code class="path">${problem.path}</code> ${problem.message}</li>`)}
                        </ul>`
                      : null
                  }
                </li>`,
            )}
          </ol>`
    }
  </section>`;
}

function sendScriptPage(
  ctx: Context,
  bot: BotRecord,
  text: string,
  document: unknown,
  groups: ProblemGroup[] = [],
): void {
  const invalid = groups.length > 0;
  sendPage(ctx, {
    title: 'Script',
    crumbs: botCrumbs(bot),
    status: invalid ? 422 : 200,
    body: html`${invalid ? problemSummary(groups) : null}
      <div class="script-layout">
        <form method="post" action="${botPath(bot.id, 'script')}" class="stack">
          ${csrfInput(sessionOf(ctx).csrf)}
          <label for="script-document">Script document (JSON)</label>
          <p class="hint" id="script-hint">
            The document <code>PUT /api/v1/bots/${bot.id}/script</code> takes, checked as it checks it. Step ids are not
            shown: each step keeps its id by its key.
          </p>
          <textarea
            id="script-document"
            name="script"
            rows="28"
            spellcheck="false"
            autocapitalize="off"
            aria-describedby="script-hint${invalid ? ' script-problems' : ''}"
            ${invalid ? html` aria-invalid="true"` : null}
          >
${text}</textarea>
          <button type="submit">Save script</button>
        </form>
        ${stepOutline(outlineOf(document, groups))}
      </div>`,
  });
}

/**
 * The document as PUT takes it: without the step ids GET adds (PUT refuses them; a saved script
 * keeps each step's id by its key).
 */
function editableDocument(document: Record<string, unknown>): Record<string, unknown> {
  const steps = document.steps as Array<Record<string, unknown>>;
  return { ...document, steps: steps.map(({ id: _id, ...step }) => step) };
}

/** The text of a submitted script as a document, or the problem that it is not JSON. */
function parseDocument(text: string): { document: unknown } | { problem: ScriptProblem } {
  try {
    return { document: JSON.parse(text) as unknown };
  } catch (error) {
    return { problem: { path: '', message: `script: not valid JSON (${(error as Error).message})` } };
  }
}

export function registerScriptPages(router: Router, deps: ConsoleDeps): void {
  router.get('/bots/:botId/script', async (ctx) => {
    const bot = botOf(ctx);
    const document = editableDocument(await scriptDocument(deps.management.db, bot.id));
    sendScriptPage(ctx, bot, JSON.stringify(document, null, 2), document);
  });

  router.post('/bots/:botId/script', async (ctx) => {
    const bot = botOf(ctx);
    const text = formOf(ctx).get('script') ?? '';
    const parsed = parseDocument(text);
    if ('problem' in parsed) {
      sendScriptPage(ctx, bot, text, undefined, groupProblems([parsed.problem]));
      return;
    }
    try {
      await saveScript(deps.management, bot.id, parsed.document);
    } catch (error) {
      if (!(error instanceof DomainError) || (error.code !== 'invalid_script' && error.code !== 'invalid_body'))
        throw error;
      const problems =
        error.code === 'invalid_script'
          ? (error.details?.problems as ScriptProblem[])
          : [{ path: error.param ?? '', message: error.message }];
      sendScriptPage(ctx, bot, text, parsed.document, groupProblems(problems));
      return;
    }
    ctx.status = 303;
    ctx.redirect(withNotice(botPath(bot.id, 'script'), 'saved'));
  });
}
