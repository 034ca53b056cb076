import type { Context } from 'koa';
import type { Knex } from 'knex';
import { CAMPAIGN_ID_LENGTH, findCampaignLink, type CampaignLink } from '../../db/campaigns.js';
import { insertClick } from '../../db/clicks.js';
import { DomainError } from '../../domain/errors.js';
import { isLinkPreviewCrawler, parseCookies, readClick } from '../../domain/tracker/click-request.js';
import { campaignPayload, clickPayload, telegramStartLink } from '../../domain/tracker/start-payload.js';
import { LoadingCache } from '../../util/loading-cache.js';

/** Campaign ids as src/db/campaigns.ts makes them; anything else is unknown without a query. */
export const CAMPAIGN_ID_PATTERN = new RegExp(`^[A-Za-z0-9]{${CAMPAIGN_ID_LENGTH}}$`);

/**
 * The click redirect's view of campaigns (and their bot's username), kept `ttlMs`. A change made
 * through this process's management API drops its entry at once; other web processes see it once
 * their copy expires, so a deleted campaign's link may still redirect there for up to `ttlMs`.
 */
export class CampaignLinkCache {
  private readonly entries: LoadingCache<string, CampaignLink | null>;

  constructor(
    private readonly db: Knex,
    ttlMs = 5_000,
    capacity = 10_000,
  ) {
    this.entries = new LoadingCache(capacity, () => ttlMs);
  }

  get(id: string): Promise<CampaignLink | null> {
    return this.entries.get(id, () => findCampaignLink(this.db, id));
  }

  forget(id: string): void {
    this.entries.delete(id);
  }
}

export interface ClickRouteDeps {
  db: Knex;
  links: CampaignLinkCache;
}

function unknownCampaign(): DomainError {
  return new DomainError('not_found', 'unknown_campaign', 'no campaign with this id', { param: 'campaignId' });
}

/**
 * `GET /c/{campaignId}`: records a click (one INSERT) and redirects to the bot with the click's
 * token. Link-preview crawlers and HEAD requests get the campaign's static link and record nothing.
 */
export function clickRedirectHandler(deps: ClickRouteDeps) {
  return async (ctx: Context, campaignId: string): Promise<void> => {
    const link = CAMPAIGN_ID_PATTERN.test(campaignId) ? await deps.links.get(campaignId) : null;
    // A bot loses its username only if its token goes; its links then lead nowhere.
    if (!link?.botUsername) throw unknownCampaign();
    ctx.set('Cache-Control', 'no-store');
    const userAgent = ctx.get('user-agent') || null;
    if (ctx.method === 'HEAD' || isLinkPreviewCrawler(userAgent)) {
      ctx.redirect(telegramStartLink(link.botUsername, campaignPayload(link.id)));
      return;
    }
    const click = readClick(link, {
      // Lenient decoding: a visitor is never refused for a malformed query; odd values are dropped later.
      query: [...new URLSearchParams(ctx.querystring)],
      ip: ctx.ip || null,
      userAgent,
      referer: ctx.get('referer') || null,
      cookies: parseCookies(ctx.get('cookie')),
      now: new Date(),
    });
    const stored = await insertClick(deps.db, {
      botId: link.botId,
      campaignId: link.id,
      clickid: click.clickid,
      fields: click.fields,
      ad: { ...click.ad },
    });
    ctx.redirect(telegramStartLink(link.botUsername, clickPayload(stored.token)));
  };
}
