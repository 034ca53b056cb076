import type Router from '@koa/router';
import type { BotRecord } from '../../db/bots.js';
import { listBots } from '../../db/bots.js';
import { campaignStats, listCampaigns, type CampaignRecord } from '../../db/campaigns.js';
import { campaignConversionStats } from '../../db/conversions.js';
import { listEndpoints } from '../../db/postback-endpoints.js';
import { campaignPayload, telegramStartLink } from '../../domain/tracker/start-payload.js';
import { postbackUrls } from '../../http/routes/webhooks.js';
import { each, html, type SafeHtml } from '../html.js';
import { sendPage } from '../layout.js';
import type { ConsoleDeps } from '../deps.js';
import { botOf } from '../state.js';

/** The bot's Telegram username, when a token is connected. */
function usernameOf(bot: BotRecord): string | null {
  const username = bot.telegramInfo?.username;
  return typeof username === 'string' && username !== '' ? username : null;
}

/** The console path of a bot's page, or of one of its sub-pages. */
export function botPath(botId: string, page?: 'script' | 'dialogs' | 'deliveries' | 'broadcasts'): string {
  return `/console/bots/${botId}${page ? `/${page}` : ''}`;
}

/** Breadcrumbs from the bots list to a bot's page. */
export function botCrumbs(bot: BotRecord) {
  return [
    { href: '/console/bots', label: 'Bots' },
    { href: botPath(bot.id), label: bot.name },
  ];
}

function botLinks(bot: BotRecord): SafeHtml {
  return html`<ul class="links" aria-label="Pages of ${bot.name}">
    <li><a href="${botPath(bot.id, 'script')}">Script</a></li>
    <li><a href="${botPath(bot.id, 'dialogs')}">Dialogs</a></li>
    <li><a href="${botPath(bot.id, 'deliveries')}">Deliveries</a></li>
    <li><a href="${botPath(bot.id, 'broadcasts')}">Broadcasts</a></li>
  </ul>`;
}

/** A bot's id and Telegram username, as items of a facts list. */
function botFacts(bot: BotRecord): SafeHtml {
  const username = usernameOf(bot);
  return html`<div>
      <dt>Id</dt>
      <dd><code>${bot.id}</code></dd>
    </div>
    <div>
      <dt>Telegram</dt>
      <dd>${username ? `@${username}` : 'no token connected'}</dd>
    </div>`;
}

let copyIds = 0;

/** A URL as selectable read-only text, with a button that copies it (console.js). */
function copyableUrl(label: string, url: string): SafeHtml {
  const id = `url-${++copyIds}`;
  return html`<div class="copy-field">
    <label for="${id}">${label}</label>
    <div class="copy-row">
      <input id="${id}" type="text" readonly value="${url}" class="url" /><button
        type="button"
        data-copy="${id}"
        aria-label="Copy URL ${label}"
      >
        Copy
      </button>
    </div>
  </div>`;
}

function statsList(stats: {
  clicks: number;
  starts: number;
  conversions: Record<string, number>;
  payouts: Record<string, string>;
}): SafeHtml {
  const conversions = Object.entries(stats.conversions);
  const payouts = Object.entries(stats.payouts);
  return html`<dl class="stats">
    <div>
      <dt>Clicks</dt>
      <dd>${stats.clicks}</dd>
    </div>
    <div>
      <dt>Starts</dt>
      <dd>${stats.starts}</dd>
    </div>
    <div>
      <dt>Conversions</dt>
      <dd>
        ${conversions.length === 0 ? 'none' : conversions.map(([status, count]) => `${status}: ${count}`).join(', ')}
      </dd>
    </div>
    <div>
      <dt>Payouts</dt>
      <dd>
        ${payouts.length === 0 ? 'none' : payouts.map(([currency, sum]) => `${sum}${currency ? ` ${currency}` : ''}`).join(', ')}
      </dd>
    </div>
  </dl>`;
}

export function registerBotPages(router: Router, deps: ConsoleDeps): void {
  const { db, publicUrl } = deps.management;

  router.get('/bots', async (ctx) => {
    const bots = await listBots(db);
    sendPage(ctx, {
      title: 'Bots',
      body:
        bots.length === 0
          ? html`<p>No bots yet: create one with <code>POST /api/v1/bots</code>.</p>`
          : html`<ul class="cards tiles">
              ${each(
                bots,
                (bot) =>
                  html`<li class="card">
                    <h2><a href="${botPath(bot.id)}">${bot.name}</a></h2>
                    <dl class="facts">${botFacts(bot)}</dl>
                    ${botLinks(bot)}
                  </li>`,
              )}
            </ul>`,
    });
  });

  router.get('/bots/:botId', async (ctx) => {
    const bot = botOf(ctx);
    const username = usernameOf(bot);
    const [endpoints, campaigns] = await Promise.all([listEndpoints(db, bot.id), listCampaigns(db, bot.id)]);
    const ids = campaigns.map((campaign) => campaign.id);
    const [clicks, converted] = await Promise.all([
      campaignStats(db, ids, null, null),
      campaignConversionStats(db, ids, null, null),
    ]);
    const withStats = campaigns.map((campaign: CampaignRecord) => ({
      campaign,
      stats: { ...clicks.get(campaign.id)!, ...converted.get(campaign.id)! },
    }));
    sendPage(ctx, {
      title: bot.name,
      crumbs: [{ href: '/console/bots', label: 'Bots' }],
      body: html`<dl class="facts">
          ${botFacts(bot)}
          <div>
            <dt>Time zone</dt>
            <dd>${bot.timezone}</dd>
          </div>
        </dl>
        ${botLinks(bot)}
        <section aria-labelledby="webhooks-heading">
          <h2 id="webhooks-heading">Postback webhooks</h2>
          ${
            endpoints.length === 0
              ? html`<p>No postback webhooks: create one with <code>POST /api/v1/bots/${bot.id}/webhooks</code>.</p>`
              : html`<ul class="cards">
                  ${each(endpoints, (endpoint) => {
                    const urls = postbackUrls(publicUrl, endpoint.id);
                    return html`<li class="card">
                      <h3>${endpoint.name}</h3>
                      ${copyableUrl(`${endpoint.name}: dialog updates`, urls.updateDialog)}
                      ${copyableUrl(`${endpoint.name}: conversions`, urls.conversion)}
                    </li>`;
                  })}
                </ul>`
          }
          <p class="copy-status" role="status" aria-live="polite"></p>
        </section>
        <section aria-labelledby="campaigns-heading">
          <h2 id="campaigns-heading">Campaign links</h2>
          ${
            withStats.length === 0
              ? html`<p>No campaigns.</p>`
              : html`<ul class="cards">
                  ${each(
                    withStats,
                    ({ campaign, stats }) =>
                      html`<li class="card">
                        <h3>${campaign.name}</h3>
                        ${copyableUrl(`${campaign.name}: click link`, `${publicUrl}/c/${campaign.id}`)}
                        ${username ? copyableUrl(`${campaign.name}: Telegram link`, telegramStartLink(username, campaignPayload(campaign.id))) : null}
                        ${statsList(stats)}
                      </li>`,
                  )}
                </ul>`
          }
        </section>`,
    });
  });
}
