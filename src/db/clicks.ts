import type { Knex } from 'knex';
import { randomId } from '../util/random-id.js';
import { runNamed, type NamedStatement } from './named-statement.js';

/** Click tokens (what `c_<token>` carries) and click ids flowpost makes: 16 of [A-Za-z0-9]. */
const TOKEN_LENGTH = 16;

export interface NewClick {
  botId: string;
  campaignId: string;
  /** The tracker's own click id; null: flowpost makes one. */
  clickid: string | null;
  /** Tracker fields without `clickid` (added here). */
  fields: Record<string, string>;
  ad: Record<string, string>;
}

export interface StoredClick {
  id: string;
  token: string;
  clickid: string;
}

interface ClickRow {
  id: string;
  bot_id: string;
  campaign_id: string | null;
  token: string;
  clickid: string;
  fields: Record<string, string>;
  ad: Record<string, string>;
  parent_id: string | null;
  claimed_chat_id: string | null;
  claimed_seq: string | null;
}

/**
 * Records a click. A click id the bot already has (a tracker sending the same one again) is the
 * same click: its token is returned, nothing new is written.
 */
export async function insertClick(db: Knex, click: NewClick): Promise<StoredClick> {
  const token = randomId(TOKEN_LENGTH);
  const clickid = click.clickid ?? token;
  const rows = await db.raw<{ rows: StoredClick[] }>(
    `INSERT INTO clicks (bot_id, campaign_id, token, clickid, fields, ad)
     VALUES (?, ?, ?, ?, ?::jsonb, ?::jsonb)
     ON CONFLICT (bot_id, clickid) DO NOTHING
     RETURNING id, token, clickid`,
    [
      click.botId,
      click.campaignId,
      token,
      clickid,
      JSON.stringify({ ...click.fields, clickid }),
      JSON.stringify(click.ad),
    ],
  );
  if (rows.rows[0]) return rows.rows[0];
  const existing = await db<ClickRow>('clicks').where({ bot_id: click.botId, clickid }).first('id', 'token', 'clickid');
  return existing!;
}

/** A click as its dialog gets it. */
export interface ClaimedClick {
  id: string;
  clickid: string;
  campaignId: string | null;
  fields: Record<string, string>;
  /** The campaign's start step key, if it names one. */
  startStep: string | null;
  /** The campaign's name. */
  campaign: string | null;
  /** What the click keeps for ad platforms. */
  ad: Record<string, string>;
}

export interface ClaimRef {
  botId: string;
  chatId: number;
  /** The order of the /start claiming it: a retry of the same input finds the same click. */
  seq: number;
}

const CLAIM_COLUMNS = `c.id, c.clickid, c.campaign_id, c.fields, c.ad, k.start_step, k.name AS campaign`;

interface ClaimRow {
  id: string;
  clickid: string;
  campaign_id: string | null;
  fields: Record<string, string>;
  ad: Record<string, string>;
  start_step: string | null;
  campaign: string | null;
}

function toClaimed(row: ClaimRow): ClaimedClick {
  return {
    id: row.id,
    clickid: row.clickid,
    campaignId: row.campaign_id,
    fields: row.fields,
    startStep: row.start_step,
    campaign: row.campaign,
    ad: row.ad,
  };
}

async function claimedBy(
  trx: Knex,
  ref: ClaimRef,
  where: string,
  bindings: Knex.Value[],
): Promise<ClaimedClick | null> {
  const { rows } = await trx.raw<{ rows: ClaimRow[] }>(
    `SELECT ${CLAIM_COLUMNS} FROM clicks c LEFT JOIN campaigns k ON k.id = c.campaign_id
     WHERE c.bot_id = ? AND ${where} LIMIT 1`,
    [ref.botId, ...bindings],
  );
  return rows[0] ? toClaimed(rows[0]) : null;
}

/** The click this /start already claimed, when the input is handled again. */
function claimedByInput(trx: Knex, ref: ClaimRef): Promise<ClaimedClick | null> {
  return claimedBy(trx, ref, 'c.claimed_chat_id = ? AND c.claimed_seq = ?', [ref.chatId, ref.seq]);
}

/**
 * Claims `click` (locked) for the chat: an unclaimed click becomes the chat's; one this chat holds
 * stays its; one another chat holds (a forwarded link) forks into a click of this chat's own, with
 * a new click id and the same fields. Postback values waiting on the click come back, in order.
 */
async function claimLocked(trx: Knex, ref: ClaimRef, click: ClickRow): Promise<ClickClaim> {
  if (click.claimed_chat_id === null) {
    await trx('clicks')
      .where({ id: click.id })
      .update({ claimed_chat_id: ref.chatId, claimed_seq: ref.seq, claimed_at: trx.fn.now() });
    const waiting = await listWaitingUpdates(trx, click.id);
    return { click: (await claimedBy(trx, ref, 'c.id = ?', [click.id]))!, waiting, fresh: true };
  }
  if (Number(click.claimed_chat_id) === ref.chatId) {
    return { click: (await claimedBy(trx, ref, 'c.id = ?', [click.id]))!, waiting: [], fresh: false };
  }
  const token = randomId(TOKEN_LENGTH);
  const [fork] = await trx('clicks')
    .insert({
      bot_id: ref.botId,
      campaign_id: click.campaign_id,
      token,
      clickid: token,
      fields: JSON.stringify({ ...click.fields, clickid: token }),
      ad: JSON.stringify(click.ad),
      parent_id: click.id,
      claimed_chat_id: ref.chatId,
      claimed_seq: ref.seq,
      claimed_at: trx.fn.now(),
    })
    .returning<{ id: string }[]>('id');
  return { click: (await claimedBy(trx, ref, 'c.id = ?', [fork!.id]))!, waiting: [], fresh: true };
}

async function recordOnDialog(trx: Knex, ref: ClaimRef, clickId: string): Promise<void> {
  await trx('dialogs')
    .where({ bot_id: ref.botId, chat_id: ref.chatId })
    .update({ first_click_id: trx.raw('coalesce(first_click_id, ?)', [clickId]), latest_click_id: clickId });
}

export interface ClickClaim {
  click: ClaimedClick;
  /**
   * Postback values that waited on the click, oldest first: to be applied to the dialog now, then
   * dropped (they stay until then, so a retry of the claiming input applies them again).
   */
  waiting: WaitingUpdate[];
  /** This /start claimed the click (or forked it); false when the chat already held it. */
  fresh: boolean;
}

/** `/start c_<token>`: claims the campaign link's click. Null when no click has the token. */
export async function claimClickByToken(db: Knex, ref: ClaimRef, token: string): Promise<ClickClaim | null> {
  return db.transaction(async (trx) => {
    const again = await claimedByInput(trx, ref);
    if (again) return { click: again, waiting: await listWaitingUpdates(trx, again.id), fresh: true };
    const click = await trx<ClickRow>('clicks').where({ bot_id: ref.botId, token }).forUpdate().first();
    if (!click) return null;
    const claim = await claimLocked(trx, ref, click);
    await recordOnDialog(trx, ref, claim.click.id);
    return claim;
  });
}

/**
 * `/start k_<campaignId>[__<clickid>]`: a static campaign link. The click is made now (with the
 * link's click id when it carries one, taking that click if the bot already has it). Null when the
 * campaign is unknown, deleted or another bot's.
 */
export async function claimCampaignClick(
  db: Knex,
  ref: ClaimRef,
  campaign: { id: string; fields: Record<string, string> },
  clickid: string | null,
): Promise<ClickClaim | null> {
  return db.transaction(async (trx) => {
    const again = await claimedByInput(trx, ref);
    if (again) return { click: again, waiting: await listWaitingUpdates(trx, again.id), fresh: true };
    const token = randomId(TOKEN_LENGTH);
    const id = clickid ?? token;
    await trx.raw(
      `INSERT INTO clicks (bot_id, campaign_id, token, clickid, fields, ad)
       VALUES (?, ?, ?, ?, ?::jsonb, '{}'::jsonb)
       ON CONFLICT (bot_id, clickid) DO NOTHING`,
      [ref.botId, campaign.id, token, id, JSON.stringify({ ...campaign.fields, clickid: id })],
    );
    const click = await trx<ClickRow>('clicks').where({ bot_id: ref.botId, clickid: id }).forUpdate().first();
    const claim = await claimLocked(trx, ref, click!);
    await recordOnDialog(trx, ref, claim.click.id);
    return claim;
  });
}

// On the web tier's path of postbacks by click id: parsed and planned once per connection, and
// reading a batch of click ids at once.
const FIND_BY_CLICKIDS: NamedStatement = {
  name: 'flowpost_clicks_by_clickid',
  text: `SELECT c.bot_id, c.clickid, c.id, c.claimed_chat_id
           FROM unnest($1::uuid[], $2::text[]) AS w(bot_id, clickid)
           JOIN clicks c ON c.bot_id = w.bot_id AND c.clickid = w.clickid`,
};

export interface ClickRef {
  botId: string;
  clickid: string;
}

/** Where each click id leads: its click and the chat that claimed it (null while nobody has); null for an unknown one. */
export async function findClicksByClickId(
  db: Knex,
  refs: readonly ClickRef[],
): Promise<Array<{ clickId: string; chatId: number | null } | null>> {
  const rows = await runNamed<{ bot_id: string; clickid: string; id: string; claimed_chat_id: string | null }>(
    db,
    FIND_BY_CLICKIDS,
    [refs.map((ref) => ref.botId), refs.map((ref) => ref.clickid)],
  );
  const found = new Map(
    rows.map((row) => [
      `${row.bot_id}:${row.clickid}`,
      { clickId: row.id, chatId: row.claimed_chat_id === null ? null : Number(row.claimed_chat_id) },
    ]),
  );
  return refs.map((ref) => found.get(`${ref.botId}:${ref.clickid}`) ?? null);
}

/** A postback's job kept on a click nobody has claimed yet. */
export interface WaitingUpdate {
  seq: number;
  job: unknown;
}

/**
 * Keeps a postback on an unclaimed click (under the click's lock, so a claim either sees it or
 * happened first). Returns the chat when the click turns out to be claimed: apply it there.
 */
export async function waitOnClick(
  db: Knex,
  botId: string,
  clickid: string,
  update: WaitingUpdate,
): Promise<{ chatId: number | null } | null> {
  return db.transaction(async (trx) => {
    const click = await trx<ClickRow>('clicks')
      .where({ bot_id: botId, clickid })
      .forUpdate()
      .first('id', 'claimed_chat_id');
    if (!click) return null;
    if (click.claimed_chat_id !== null) return { chatId: Number(click.claimed_chat_id) };
    await trx('click_waiting_updates')
      .insert({ click_id: click.id, seq: update.seq, job: JSON.stringify(update.job) })
      .onConflict(['click_id', 'seq'])
      .ignore();
    return { chatId: null };
  });
}

async function listWaitingUpdates(trx: Knex, clickId: string): Promise<WaitingUpdate[]> {
  const rows = await trx('click_waiting_updates')
    .where({ click_id: clickId })
    .orderBy('seq')
    .select<{ seq: string; job: unknown }[]>('seq', 'job');
  return rows.map((row) => ({ seq: Number(row.seq), job: row.job }));
}

/** Forgets the waiting postbacks of a claimed click once they are applied to its dialog. */
export async function dropWaitingUpdates(db: Knex, clickId: string, seqs: number[]): Promise<void> {
  if (seqs.length > 0) await db('click_waiting_updates').where({ click_id: clickId }).whereIn('seq', seqs).delete();
}
