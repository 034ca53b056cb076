import type Router from '@koa/router';
import { listDeliveries, type AttemptRecord, type DeliveryRecord } from '../../db/deliveries.js';
import { deliveryListQuery, retryFailedDelivery } from '../../http/routes/deliveries.js';
import { parseBody } from '../../http/validation.js';
import { csrfInput } from '../csrf.js';
import { each, html, type SafeHtml } from '../html.js';
import { sendPage, withNotice } from '../layout.js';
import type { ConsoleDeps } from '../deps.js';
import { botOf, sessionOf } from '../state.js';
import { botCrumbs, botPath } from './bots.js';

const PAGE_SIZE = 50;

/** The API's filters; the page's size is its own. */
const listQuery = deliveryListQuery.omit({ limit: true });

function attemptOutcome(attempt: AttemptRecord): string {
  if (attempt.status !== null) return `HTTP ${attempt.status}`;
  return attempt.errorKind ?? attempt.error ?? 'no answer';
}

function attemptsTable(delivery: DeliveryRecord & { attempts: AttemptRecord[] }): SafeHtml {
  if (delivery.attempts.length === 0) return html`<p>No attempt yet.</p>`;
  return html`<div class="table-scroll" role="region" aria-label="Attempts of delivery ${delivery.id}" tabindex="0">
    <table class="attempts">
      <thead>
        <tr>
          <th scope="col">Chain.attempt</th>
          <th scope="col">Started</th>
          <th scope="col">Outcome</th>
          <th scope="col">Duration</th>
          <th scope="col">Response excerpt</th>
        </tr>
      </thead>
      <tbody>
        ${each(
          delivery.attempts,
          (attempt) =>
            html`<tr>
              <td>${attempt.chain}.${attempt.attempt}</td>
              <td><time datetime="${attempt.startedAt.toISOString()}">${attempt.startedAt.toISOString()}</time></td>
              <td>
                ${attemptOutcome(attempt)}${attempt.error && attempt.status !== null ? html`<br /><span class="hint">${attempt.error}</span>` : null}
              </td>
              <td>${attempt.durationMs} ms</td>
              <td>${attempt.responseExcerpt ? html`<pre class="excerpt">${attempt.responseExcerpt}</pre>` : '—'}</td>
            </tr>`,
        )}
      </tbody>
    </table>
  </div>`;
}

function stateTabs(botId: string, current: string | undefined): SafeHtml {
  const tabs: Array<[string | undefined, string]> = [
    [undefined, 'All'],
    ['pending', 'Pending'],
    ['succeeded', 'Succeeded'],
    ['failed', 'Failed'],
  ];
  return html`<nav aria-label="Delivery state" class="tabs">
    <ul>
      ${each(
        tabs,
        ([state, label]) =>
          html`<li>
            <a
              href="${botPath(botId, 'deliveries')}${state ? `?state=${state}` : ''}"
              ${state === current ? html` aria-current="page"` : null}
              >${label}</a
            >
          </li>`,
      )}
    </ul>
  </nav>`;
}

export function registerDeliveryPages(router: Router, deps: ConsoleDeps): void {
  router.get('/bots/:botId/deliveries', async (ctx) => {
    const bot = botOf(ctx);
    const { notice: _notice, ...params } = ctx.query;
    const query = parseBody(listQuery, params);
    const deliveries = await listDeliveries(deps.management.db, bot.id, {
      limit: PAGE_SIZE,
      ...(query.state ? { state: query.state } : {}),
      ...(query.before ? { before: new Date(query.before) } : {}),
    });
    const csrf = sessionOf(ctx).csrf;
    const last = deliveries.at(-1);
    const older =
      deliveries.length === PAGE_SIZE && last
        ? `${botPath(bot.id, 'deliveries')}?${new URLSearchParams({ ...(query.state ? { state: query.state } : {}), before: last.createdAt.toISOString() }).toString()}`
        : null;
    sendPage(ctx, {
      title: 'Deliveries',
      crumbs: botCrumbs(bot),
      body: html`${stateTabs(bot.id, query.state)}
      ${
        deliveries.length === 0
          ? html`<p>No ${query.state ?? ''} deliveries.</p>`
          : html`<ul class="cards deliveries">
              ${each(
                deliveries,
                (delivery) =>
                  html`<li class="card delivery" data-delivery-id="${delivery.id}" data-state="${delivery.state}">
                    <h2><span class="method">${delivery.method}</span> <span class="url">${delivery.url}</span></h2>
                    <dl class="facts">
                      <div>
                        <dt>State</dt>
                        <dd><span class="badge state-${delivery.state}">${delivery.state}</span></dd>
                      </div>
                      <div>
                        <dt>Created</dt>
                        <dd>
                          <time datetime="${delivery.createdAt.toISOString()}"
                            >${delivery.createdAt.toISOString()}</time
                          >
                        </dd>
                      </div>
                      <div>
                        <dt>Attempts</dt>
                        <dd>${delivery.attemptCount}</dd>
                      </div>
                      ${
                        delivery.lastError
                          ? html`<div>
                              <dt>Last error</dt>
                              <dd>${delivery.lastError}</dd>
                            </div>`
                          : null
                      }
                      ${
                        delivery.chatId !== null
                          ? html`<div>
                              <dt>Chat</dt>
                              <dd>${delivery.chatId}</dd>
                            </div>`
                          : null
                      }
                      <div>
                        <dt>Id</dt>
                        <dd><code>${delivery.id}</code></dd>
                      </div>
                    </dl>
                    ${attemptsTable(delivery)}
                    ${
                      delivery.state === 'failed'
                        ? html`<form method="post" action="${botPath(bot.id, 'deliveries')}/${delivery.id}/replay">
                            ${csrfInput(csrf)}<button type="submit" aria-label="Replay delivery to ${delivery.url}">
                              Replay
                            </button>
                          </form>`
                        : null
                    }
                  </li>`,
              )}
            </ul>`
      }
      ${older ? html`<p><a href="${older}">Older deliveries</a></p>` : null}`,
    });
  });

  router.post('/bots/:botId/deliveries/:id/replay', async (ctx) => {
    const bot = botOf(ctx);
    await retryFailedDelivery(deps.management, ctx.params.id!, bot.id);
    ctx.status = 303;
    ctx.redirect(withNotice(botPath(bot.id, 'deliveries'), 'replayed'));
  });
}
