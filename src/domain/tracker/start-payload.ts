/**
 * Telegram's `/start` payloads (deep links `t.me/<bot>?start=PAYLOAD`). Telegram silently drops a
 * payload longer than 64 characters or with a character outside `[A-Za-z0-9_-]` (the bot then gets
 * a bare `/start`), so every payload built here is checked against that rule.
 */
const START_PAYLOAD_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/** What a `/start` payload asks for. */
export type StartPayload =
  /** `c_<token>`: claim the click the campaign link recorded. */
  | { kind: 'click'; token: string }
  /** `k_<campaignId>` or `k_<campaignId>__<clickid>`: a static campaign link; the click is made at /start. */
  | { kind: 'campaign'; campaignId: string; clickid: string | null }
  /** Anything else, or nothing: no tracker data. */
  | { kind: 'none' };

const CLICK = /^c_([A-Za-z0-9_-]+)$/;
const CAMPAIGN = /^k_([A-Za-z0-9]+)(?:__([A-Za-z0-9_-]+))?$/;

export function isValidStartPayload(payload: string): boolean {
  return START_PAYLOAD_PATTERN.test(payload);
}

/** Reads the payload of a `/start` message's text (`/start`, `/start PAYLOAD`, `/start@bot PAYLOAD`). */
export function readStartPayload(text: string): StartPayload {
  const match = /^\/start(?:@[A-Za-z0-9_]+)?(?:\s+(\S+))?\s*$/.exec(text);
  return parseStartPayload(match?.[1] ?? null);
}

/** What a /start's payload (as Telegram delivered it, or null for a bare /start) asks for. */
export function parseStartPayload(payload: string | null): StartPayload {
  if (!payload || !isValidStartPayload(payload)) return { kind: 'none' };
  const click = CLICK.exec(payload);
  if (click) return { kind: 'click', token: click[1]! };
  const campaign = CAMPAIGN.exec(payload);
  if (campaign) return { kind: 'campaign', campaignId: campaign[1]!, clickid: campaign[2] ?? null };
  return { kind: 'none' };
}

function checked(payload: string): string {
  if (!isValidStartPayload(payload)) throw new Error(`start payload "${payload}" breaks Telegram's rule`);
  return payload;
}

export function clickPayload(token: string): string {
  return checked(`c_${token}`);
}

export function campaignPayload(campaignId: string): string {
  return checked(`k_${campaignId}`);
}

/** A deep link to the bot; throws if the payload would be dropped by Telegram. */
export function telegramStartLink(botUsername: string, payload: string): string {
  return `https://t.me/${encodeURIComponent(botUsername)}?start=${checked(payload)}`;
}
