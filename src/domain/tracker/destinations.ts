/**
 * flowpost's own postbacks onwards (API.md §5 "Destinations"): for a claimed click or a conversion,
 * each destination that hears it becomes a Send Webhook request, rendered here (pure) and
 * delivered by the outbound machinery with its retries, signatures and attempt log.
 */
import { renderWebhookRequest } from '../engine/webhook-step.js';
import { renderTemplate, type TemplateContext } from '../../templates/index.js';

export const DESTINATION_EVENTS = ['click.claimed', 'conversion'] as const;
export type DestinationEvent = (typeof DESTINATION_EVENTS)[number];
export const DESTINATION_METHODS = ['GET', 'POST', 'PUT'] as const;

export interface Destination {
  id: string;
  on: DestinationEvent[];
  /** Only clicks of these campaigns (null: every campaign's). */
  campaigns: string[] | null;
  /** Only conversions of these statuses (null: every status). */
  statuses: string[] | null;
  method: (typeof DESTINATION_METHODS)[number];
  url: string;
  headers: Record<string, string>;
  body: string | null;
}

/** What happened, with what the templates may name. */
export interface DestinationHappening {
  kind: DestinationEvent;
  clickid: string;
  campaignId: string | null;
  /** The campaign's name. */
  campaign: string | null;
  /** What the click keeps for ad platforms: ip, user_agent, referer, fbclid, fbc, fbp, ttclid, gclid. */
  click: Record<string, string>;
  conversion?: {
    status: string;
    payout: string | null;
    currency: string | null;
    event: string;
    /** '' when the network sent none. */
    tid: string;
    /** Stable per conversion and status: the receiver's dedupe key (Meta's event_id). */
    eventKey: string;
    /** When the conversion was recorded, in Unix seconds. */
    eventTime: number;
  };
}

const CLICK_NAMES = ['ip', 'user_agent', 'referer', 'fbclid', 'fbc', 'fbp', 'ttclid', 'gclid'];
const PLACEHOLDER = new RegExp(
  `\\{(clickid|status|payout|currency|event|tid|campaign|eventKey|eventTime|click\\.(?:${CLICK_NAMES.join('|')}))\\}`,
  'g',
);

/** A destination's template as the template language reads it: `{clickid}` → `{{destination.clickid}}`. */
export function destinationTemplate(source: string): string {
  // "}}}" would read as a triple-stash close; "~}}" closes the tag and strips nothing before a "}".
  return source.replace(PLACEHOLDER, (match: string, name: string, offset: number) =>
    source[offset + match.length] === '}' ? `{{destination.${name}~}}` : `{{destination.${name}}}`,
  );
}

function values(happening: DestinationHappening): Record<string, unknown> {
  const c = happening.conversion;
  return {
    clickid: happening.clickid,
    campaign: happening.campaign ?? '',
    status: c?.status ?? '',
    payout: c?.payout ?? '',
    currency: c?.currency ?? '',
    event: c?.event ?? '',
    tid: c?.tid ?? '',
    eventKey: c?.eventKey ?? `click-${happening.clickid}`,
    eventTime: c ? String(c.eventTime) : '',
    click: Object.fromEntries(CLICK_NAMES.map((name) => [name, happening.click[name] ?? ''])),
  };
}

function hears(destination: Destination, happening: DestinationHappening): boolean {
  if (!destination.on.includes(happening.kind)) return false;
  if (destination.campaigns && !(happening.campaignId && destination.campaigns.includes(happening.campaignId)))
    return false;
  if (destination.statuses && happening.conversion && !destination.statuses.includes(happening.conversion.status))
    return false;
  return true;
}

export interface DestinationRequest {
  destinationId: string;
  method: Destination['method'];
  url: string;
  headers: Record<string, string>;
  body: string | null;
}

/** The requests the destinations that hear `happening` send, rendered against the dialog and it. */
export function destinationRequests(
  destinations: readonly Destination[],
  happening: DestinationHappening,
  dialog: Omit<TemplateContext, 'destination'>,
): DestinationRequest[] {
  const context: TemplateContext = { ...dialog, destination: values(happening) };
  return destinations
    .filter((destination) => hears(destination, happening))
    .map((destination) => ({
      destinationId: destination.id,
      method: destination.method,
      ...renderWebhookRequest(destination, (source, mode) =>
        renderTemplate(destinationTemplate(source), mode, context),
      ),
    }));
}
