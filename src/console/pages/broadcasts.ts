import type Router from '@koa/router';
import type { Context } from 'koa';
import type { BotRecord } from '../../db/bots.js';
import { listBroadcasts } from '../../db/broadcasts.js';
import { listStepRefs } from '../../db/script-steps.js';
import { DomainError } from '../../domain/errors.js';
import {
  actOnBroadcast,
  BROADCAST_ACTIONS,
  broadcastProgresses,
  createBroadcast,
  findBroadcastOf,
  type BroadcastProgress,
  createBroadcastSchema,
  type BroadcastAction,
} from '../../http/routes/broadcasts.js';
import { parseBody } from '../../http/validation.js';
import { csrfInput } from '../csrf.js';
import type { FormFields } from '../form.js';
import { each, html, type SafeHtml } from '../html.js';
import { option } from '../fragments.js';
import { sendPage, withNotice } from '../layout.js';
import type { ConsoleDeps } from '../deps.js';
import { botOf, formOf, sessionOf } from '../state.js';
import { botCrumbs, botPath } from './bots.js';

const broadcastsPath = (botId: string) => botPath(botId, 'broadcasts');

/** Which actions a broadcast in this state offers. */
const ACTIONS_BY_STATE: Record<string, BroadcastAction[]> = {
  scheduled: ['pause', 'cancel'],
  running: ['pause', 'cancel'],
  paused: ['resume', 'cancel'],
};

const ACTION_LABELS: Record<BroadcastAction, string> = { pause: 'Pause', resume: 'Resume', cancel: 'Cancel' };

function counts(p: BroadcastProgress): SafeHtml {
  const items: Array<[string, number | string | null]> = [
    ['Planned', p.planned ?? '—'],
    ['Sent', p.sent],
    ['Blocked', p.blocked],
    ['Failed', p.failed],
    ['Skipped', p.skipped],
    ['Interrupted', p.interrupted],
    ['Remaining', p.remaining ?? '—'],
  ];
  return html`<dl class="facts">
    ${each(
      items,
      ([label, value]) =>
        html`<div>
          <dt>${label}</dt>
          <dd>${value}</dd>
        </div>`,
    )}
    <div>
      <dt>${p.state === 'scheduled' ? 'Starts' : 'Estimated end'}</dt>
      <dd>${p.state === 'scheduled' ? p.startAt : (p.estimatedEnd ?? '—')}</dd>
    </div>
  </dl>`;
}

function broadcastCard(botId: string, p: BroadcastProgress, csrf: string): SafeHtml {
  const what = p.text !== undefined ? p.text : `Step ${p.stepKey ?? ''}`;
  return html`<li class="card broadcast" data-broadcast-id="${p.id}" data-state="${p.state}">
    <h2><span class="badge state-${p.state}">${p.state}</span> <span class="broadcast-text">${what}</span></h2>
    ${counts(p)}
    <div class="inline-form">
      ${each(
        ACTIONS_BY_STATE[p.state] ?? [],
        (action) =>
          html`<form method="post" action="${broadcastsPath(botId)}/${p.id}/${action}">
            ${csrfInput(csrf)}<button type="submit" aria-label="${ACTION_LABELS[action]} broadcast ${p.id}">
              ${ACTION_LABELS[action]}
            </button>
          </form>`,
      )}
    </div>
  </li>`;
}

interface Draft {
  text: string;
  tags: string;
  step: string;
  buttonText: string;
  buttonUrl: string;
}

const EMPTY_DRAFT: Draft = { text: '', tags: '', step: '', buttonText: '', buttonUrl: '' };

function newBroadcastForm(
  bot: BotRecord,
  csrf: string,
  steps: Array<{ key: string }>,
  draft: Draft,
  problem: { message: string; param?: string | undefined } | null,
): SafeHtml {
  return html`<section aria-labelledby="new-broadcast">
    <h2 id="new-broadcast">New broadcast</h2>
    ${
      problem
        ? html`<div class="problems" role="alert" id="broadcast-problem">
            <p>${problem.param ? html`<code>${problem.param}</code>: ` : null}${problem.message}</p>
          </div>`
        : null
    }
    <form method="post" action="${broadcastsPath(bot.id)}" class="stack">
      ${csrfInput(csrf)}
      <label for="broadcast-text">Message</label>
      <p class="hint" id="broadcast-text-hint">
        A template: <code>{{name}}</code>, <code>{{fields.key}}</code>, <code>{{tracker.clickid}}</code>. Sent to every
        started dialog in auto that the audience below matches, as it is when the broadcast starts.
      </p>
      <textarea
        id="broadcast-text"
        name="text"
        rows="4"
        maxlength="4096"
        required
        aria-describedby="broadcast-text-hint${problem ? ' broadcast-problem' : ''}"
      >
${draft.text}</textarea>
      <label for="broadcast-tags">Audience: tags (comma-separated; all must be present)</label>
      <input id="broadcast-tags" name="tags" type="text" value="${draft.tags}" autocomplete="off" />
      <label for="broadcast-step">Audience: at step</label>
      <select id="broadcast-step" name="step">
        <option value="">Any step</option>
        ${each(steps, (step) => option(step.key, step.key, draft.step))}
      </select>
      <label for="broadcast-button-text">Button text (optional)</label>
      <input id="broadcast-button-text" name="buttonText" type="text" value="${draft.buttonText}" />
      <label for="broadcast-button-url">Button link (optional)</label>
      <input id="broadcast-button-url" name="buttonUrl" type="url" value="${draft.buttonUrl}" />
      <button type="submit">Start broadcast</button>
    </form>
  </section>`;
}

function draftOf(form: FormFields): Draft {
  return {
    text: form.get('text') ?? '',
    tags: form.get('tags') ?? '',
    step: form.get('step') ?? '',
    buttonText: form.get('buttonText') ?? '',
    buttonUrl: form.get('buttonUrl') ?? '',
  };
}

/** The form as the API's body, so that the same schema checks it. */
function bodyOf(draft: Draft): Record<string, unknown> {
  const tags = draft.tags
    .split(',')
    .map((tag) => tag.trim())
    .filter((tag) => tag !== '');
  const audience: Record<string, unknown> = {};
  if (tags.length > 0) audience.tags = tags;
  if (draft.step !== '') audience.step = draft.step;
  const button =
    draft.buttonText.trim() !== '' || draft.buttonUrl.trim() !== ''
      ? [{ text: draft.buttonText.trim(), url: draft.buttonUrl.trim() }]
      : undefined;
  return { audience, text: draft.text, ...(button ? { buttons: button } : {}) };
}

async function sendBroadcastsPage(
  ctx: Context,
  deps: ConsoleDeps,
  draft: Draft = EMPTY_DRAFT,
  problem: { message: string; param?: string | undefined } | null = null,
): Promise<void> {
  const bot = botOf(ctx);
  const csrf = sessionOf(ctx).csrf;
  const [broadcasts, steps] = await Promise.all([
    listBroadcasts(deps.management.db, bot.id, 50),
    listStepRefs(deps.management.db, bot.id),
  ]);
  const progress = await broadcastProgresses(deps.management, broadcasts);
  sendPage(ctx, {
    title: 'Broadcasts',
    crumbs: botCrumbs(bot),
    status: problem ? 422 : 200,
    // A refused form comes first, beside its problem; else the broadcasts and their progress do.
    body: html`${problem ? newBroadcastForm(bot, csrf, steps, draft, problem) : null}
      <section aria-labelledby="broadcast-list">
        <h2 id="broadcast-list">Broadcasts</h2>
        ${
          progress.length === 0
            ? html`<p>No broadcasts yet.</p>`
            : html`<ul class="cards broadcasts">
                ${each(progress, (p) => broadcastCard(bot.id, p, csrf))}
              </ul>`
        }
      </section>
      ${problem ? null : newBroadcastForm(bot, csrf, steps, draft, problem)}`,
  });
}

/**
 * A bot's broadcasts: each with its progress and pause, resume or cancel; a form for a new one
 * (a message to the dialogs with given tags, or at a step). The same checks and storage as the
 * management API's broadcast routes.
 */
export function registerBroadcastPages(router: Router, deps: ConsoleDeps): void {
  router.get('/bots/:botId/broadcasts', (ctx) => sendBroadcastsPage(ctx, deps));

  router.post('/bots/:botId/broadcasts', async (ctx) => {
    const bot = botOf(ctx);
    const draft = draftOf(formOf(ctx));
    try {
      await createBroadcast(deps.management, bot, parseBody(createBroadcastSchema, bodyOf(draft)));
    } catch (error) {
      if (!(error instanceof DomainError) || error.kind === 'unavailable') throw error;
      // Shown beside the form, with what was typed kept.
      await sendBroadcastsPage(ctx, deps, draft, { message: error.message, param: error.param });
      return;
    }
    ctx.status = 303;
    ctx.redirect(withNotice(broadcastsPath(bot.id), 'saved'));
  });

  router.post('/bots/:botId/broadcasts/:id/:action', async (ctx) => {
    const bot = botOf(ctx);
    const { id, action } = ctx.params as { id: string; action: string };
    if (!(BROADCAST_ACTIONS as string[]).includes(action)) {
      throw new DomainError('not_found', 'unknown_action', 'There is no such broadcast action.', { param: 'action' });
    }
    const broadcast = await findBroadcastOf(deps.management, bot.id, id);
    await actOnBroadcast(deps.management, broadcast, action as BroadcastAction);
    ctx.status = 303;
    ctx.redirect(withNotice(broadcastsPath(bot.id), 'saved'));
  });
}
