import type Router from '@koa/router';
import type { Context } from 'koa';
import { listCampaigns } from '../../db/campaigns.js';
import { dialogsUpdatedAt, listDialogs, type DialogView } from '../../db/dialogs.js';
import { listStepRefs } from '../../db/script-steps.js';
import { DIALOG_STATUSES } from '../../domain/dialog.js';
import { encodeCursor, readListQuery } from '../../http/routes/dialogs.js';
import { dialogLabel } from '../display-text.js';
import { option, timeTag } from '../fragments.js';
import { each, html, type SafeHtml } from '../html.js';
import { sendPage } from '../layout.js';
import type { ConsoleDeps } from '../deps.js';
import { botOf } from '../state.js';
import { botCrumbs, botPath } from './bots.js';

type Query = Record<string, string | string[] | undefined>;

/**
 * The listing's parameters from the page's URL, as the API reads them: the filter form sends every
 * field, so an empty one means "any" and is dropped (the API would refuse `status=`).
 */
export function listingQuery(query: Context['query']): Query {
  const kept: Query = {};
  for (const [name, value] of Object.entries(query)) {
    if (name === 'notice' || value === undefined) continue;
    const values = (Array.isArray(value) ? value : [value]).filter((v) => v !== '');
    if (values.length > 0) kept[name] = values.length === 1 ? values[0] : values;
  }
  return kept;
}

function first(value: string | string[] | undefined): string {
  return (Array.isArray(value) ? value[0] : value) ?? '';
}

/** The path of a dialog's page. */
export function dialogPath(botId: string, chatId: number): string {
  return `${botPath(botId, 'dialogs')}/${chatId}`;
}

export function statusBadge(status: string, id?: string): SafeHtml {
  return html`<span class="badge status-${status}" ${id ? html`id="${id}"` : null}>${status}</span>`;
}

function filterForm(
  botId: string,
  query: Query,
  steps: Array<{ key: string }>,
  campaigns: Array<{ id: string; name: string }>,
): SafeHtml {
  const tags = ([] as string[]).concat(query.tag ?? []);
  // Parameters the form has no field for (field.KEY, updatedSince, further tags) ride along unchanged.
  const carried = Object.entries(query).flatMap(([name, value]) =>
    name.startsWith('field.') || name === 'updatedSince'
      ? ([] as string[]).concat(value ?? []).map((v) => [name, v])
      : [],
  );
  for (const tag of tags.slice(1)) carried.push(['tag', tag]);
  return html`<form
    method="get"
    action="${botPath(botId, 'dialogs')}"
    class="filters"
    role="search"
    aria-label="Filter dialogs"
  >
    <div class="field">
      <label for="filter-q">Name or username</label>
      <input id="filter-q" type="search" name="q" value="${first(query.q)}" maxlength="200" />
    </div>
    <div class="field">
      <label for="filter-status">Status</label>
      <select id="filter-status" name="status">
        ${option('', 'Any', first(query.status))}
        ${each(DIALOG_STATUSES, (status) => option(status, status, first(query.status)))}
      </select>
    </div>
    <div class="field">
      <label for="filter-step">Step</label>
      <select id="filter-step" name="step">
        ${option('', 'Any', first(query.step))} ${each(steps, (step) => option(step.key, step.key, first(query.step)))}
      </select>
    </div>
    <div class="field">
      <label for="filter-tag">Tag</label>
      <input id="filter-tag" type="text" name="tag" value="${tags[0] ?? ''}" maxlength="64" />
    </div>
    <div class="field">
      <label for="filter-campaign">Campaign</label>
      <select id="filter-campaign" name="campaign">
        ${option('', 'Any', first(query.campaign))}
        ${each(campaigns, (campaign) => option(campaign.id, campaign.name, first(query.campaign)))}
      </select>
    </div>
    <div class="field">
      <label for="filter-started">Started</label>
      <select id="filter-started" name="started">
        ${option('', 'Any', first(query.started))} ${option('true', 'Started', first(query.started))}
        ${option('false', 'Not started', first(query.started))}
      </select>
    </div>
    ${each(carried, ([name, value]) => html`<input type="hidden" name="${name}" value="${value}" />`)}
    <div class="filter-actions">
      <button type="submit">Filter</button>
      <a href="${botPath(botId, 'dialogs')}">Clear</a>
    </div>
  </form>`;
}

function dialogRow(botId: string, dialog: DialogView, updatedAt: Date | undefined): SafeHtml {
  return html`<li class="dialog-row" data-chat-id="${dialog.chatId}">
    <div class="dialog-who">
      <a href="${dialogPath(botId, dialog.chatId)}">${dialogLabel(dialog)}</a>
      ${dialog.username ? html`<span class="hint">@${dialog.username}</span>` : null}
    </div>
    <div class="dialog-state">
      ${statusBadge(dialog.status)}
      ${dialog.stepKey ? html`<span>Step <code>${dialog.stepKey}</code></span>` : html`<span class="hint">no step</span>`}
    </div>
    ${
      dialog.tags.length > 0
        ? html`<ul class="tags" aria-label="Tags">
            ${each(dialog.tags, (tag) => html`<li>${tag}</li>`)}
          </ul>`
        : null
    }
    ${updatedAt ? html`<div class="hint">Last activity ${timeTag(updatedAt.toISOString())}</div>` : null}
  </li>`;
}

export function registerDialogListPage(router: Router, deps: ConsoleDeps): void {
  const { db } = deps.management;

  router.get('/bots/:botId/dialogs', async (ctx) => {
    const bot = botOf(ctx);
    const query = listingQuery(ctx.query);
    const [steps, campaigns] = await Promise.all([listStepRefs(db, bot.id), listCampaigns(db, bot.id)]);
    const { filter, limit, after } = await readListQuery({ query }, deps.management, bot.id);
    const page = await listDialogs(db, bot.id, filter, limit, after);
    const chatIds = page.items.map((dialog) => dialog.chatId);
    const updatedAt = await dialogsUpdatedAt(db, bot.id, chatIds);
    const { cursor: _cursor, ...rest } = query;
    const next = page.next
      ? `${botPath(bot.id, 'dialogs')}?${new URLSearchParams([
          ...Object.entries(rest).flatMap(([name, value]) =>
            ([] as string[]).concat(value ?? []).map((v) => [name, v]),
          ),
          ['cursor', encodeCursor(page.next)],
        ]).toString()}`
      : null;
    const filtered = Object.keys(rest).some((name) => name !== 'limit');
    sendPage(ctx, {
      title: 'Dialogs',
      crumbs: botCrumbs(bot),
      body: html`${filterForm(bot.id, query, steps, campaigns)}
        <section aria-labelledby="results-heading">
          <h2 id="results-heading">
            ${filtered ? 'Matching dialogs' : 'All dialogs'}, newest activity first${after ? ' (continued)' : ''}
          </h2>
          ${
            page.items.length === 0
              ? html`<p>${filtered ? 'No dialog matches these filters.' : 'No dialogs yet.'}</p>`
              : html`<ul class="dialog-list">
                  ${each(page.items, (dialog) => dialogRow(bot.id, dialog, updatedAt.get(dialog.chatId)))}
                </ul>`
          }
          ${next ? html`<p><a href="${next}" rel="next">Next page</a></p>` : null}
        </section>`,
    });
  });
}
