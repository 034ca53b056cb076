import { isValidKey } from '../keys.js';

/** The click ids a tracker may pass along, first match wins; kept only when they fit `[A-Za-z0-9_.-]{1,100}`. */
export const CLICK_ID_PARAMS = ['clickid', 'subid', 'click_id', 'cid'] as const;
export const CLICK_ID_PATTERN = /^[A-Za-z0-9_.-]{1,100}$/;
const MAX_TRACKER_VALUE = 1024;
const MAX_AD_VALUE = 1024;

/** What a campaign contributes to each of its clicks. */
export interface CampaignForClick {
  id: string;
  name: string;
  params: readonly string[];
  fields: Readonly<Record<string, string>>;
}

/** An incoming click as the web tier sees it. */
export interface ClickRequest {
  query: ReadonlyArray<readonly [string, string]>;
  ip: string | null;
  userAgent: string | null;
  referer: string | null;
  cookies: Readonly<Record<string, string>>;
  now: Date;
}

/** What ad platforms want back about the visitor (kept on the click, server-side only). */
export interface ClickAdData {
  ip?: string;
  user_agent?: string;
  referer?: string;
  fbclid?: string;
  fbc?: string;
  fbp?: string;
  ttclid?: string;
  gclid?: string;
}

export interface ClickRecord {
  /** The tracker's own click id, or null when flowpost makes one. */
  clickid: string | null;
  /** Tracker fields the dialog gets when the click is claimed (without `clickid`, added with it). */
  fields: Record<string, string>;
  ad: ClickAdData;
}

function first(query: ClickRequest['query'], name: string): string | undefined {
  for (const [key, value] of query) if (key === name) return value;
  return undefined;
}

function clip(value: string | null | undefined, max: number): string | undefined {
  if (value === null || value === undefined || value === '') return undefined;
  return value.length > max ? value.slice(0, max) : value;
}

/** The incoming click id, if one of the known parameters carries a usable one. */
export function incomingClickId(query: ClickRequest['query']): string | null {
  for (const name of CLICK_ID_PARAMS) {
    const value = first(query, name);
    if (value !== undefined && CLICK_ID_PATTERN.test(value)) return value;
  }
  return null;
}

/**
 * Meta's `fbc` click parameter, `fb.1.<creation time in ms>.<fbclid>`, built server-side when the
 * `_fbc` cookie is absent. The fbclid's case is kept (Meta matches it exactly).
 */
export function buildFbc(fbclid: string, createdAt: Date): string {
  return `fb.1.${createdAt.getTime()}.${fbclid}`;
}

/**
 * Reads a click: the campaign's params found in the query and its fixed fields become tracker
 * fields, with `campaign` and `campaign_id`; what ad platforms need stays aside. A value that
 * does not fit is left out rather than refusing the visitor.
 */
/** The tracker fields every click of a campaign has: its fixed fields, `campaign` and `campaign_id`. */
export function campaignFields(campaign: CampaignForClick): Record<string, string> {
  return { ...campaign.fields, campaign: campaign.name, campaign_id: campaign.id };
}

export function readClick(campaign: CampaignForClick, request: ClickRequest): ClickRecord {
  const fields: Record<string, string> = {};
  for (const param of campaign.params) {
    const value = clip(first(request.query, param), MAX_TRACKER_VALUE);
    if (value !== undefined && isValidKey(param)) fields[param] = value;
  }
  Object.assign(fields, campaignFields(campaign));

  const ad: ClickAdData = {};
  const set = (key: keyof ClickAdData, value: string | null | undefined) => {
    const clipped = clip(value, MAX_AD_VALUE);
    if (clipped !== undefined) ad[key] = clipped;
  };
  set('ip', request.ip);
  set('user_agent', request.userAgent);
  set('referer', request.referer);
  const fbclid = clip(first(request.query, 'fbclid'), MAX_AD_VALUE);
  set('fbclid', fbclid);
  set('fbc', request.cookies._fbc ?? (fbclid ? buildFbc(fbclid, request.now) : undefined));
  set('fbp', request.cookies._fbp);
  set('ttclid', first(request.query, 'ttclid'));
  set('gclid', first(request.query, 'gclid'));
  return { clickid: incomingClickId(request.query), fields, ad };
}

// Link-preview fetchers (Telegram, Meta, X, Slack, WhatsApp, …) and search crawlers: they get the
// redirect but no click is recorded for them.
const CRAWLER =
  /TelegramBot|facebookexternalhit|Facebot|meta-externalagent|Twitterbot|Slackbot|WhatsApp|LinkedInBot|Discordbot|SkypeUriPreview|vkShare|redditbot|Pinterest|Applebot|Googlebot|bingbot|YandexBot|Embedly|Iframely|bot\.html|crawler|spider/i;

export function isLinkPreviewCrawler(userAgent: string | null | undefined): boolean {
  return userAgent !== null && userAgent !== undefined && CRAWLER.test(userAgent);
}

/** Parses a Cookie header into its pairs (first occurrence wins). */
export function parseCookies(header: string | null | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!header) return out;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim();
    if (name === '' || Object.hasOwn(out, name)) continue;
    let value = part.slice(eq + 1).trim();
    try {
      value = decodeURIComponent(value);
    } catch {
      // keep it as sent
    }
    out[name] = value;
  }
  return out;
}
