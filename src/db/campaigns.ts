import type { Knex } from 'knex';
import { randomId } from '../util/random-id.js';

export interface CampaignRecord {
  id: string;
  botId: string;
  name: string;
  params: string[];
  fields: Record<string, string>;
  startStep: string | null;
  createdAt: Date;
  updatedAt: Date;
}

interface CampaignRow {
  id: string;
  bot_id: string;
  name: string;
  params: string[];
  fields: Record<string, string>;
  start_step: string | null;
  created_at: Date;
  updated_at: Date;
  deleted_at: Date | null;
}

const COLUMNS = ['id', 'bot_id', 'name', 'params', 'fields', 'start_step', 'created_at', 'updated_at'];

function toCampaign(row: CampaignRow): CampaignRecord {
  return {
    id: row.id,
    botId: row.bot_id,
    name: row.name,
    params: row.params,
    fields: row.fields,
    startStep: row.start_step,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export interface NewCampaign {
  botId: string;
  name: string;
  params: string[];
  fields: Record<string, string>;
  startStep: string | null;
}

/** Campaign ids are 10 characters of [A-Za-z0-9]: short enough for `k_<id>__<clickid>` start payloads. */
export const CAMPAIGN_ID_LENGTH = 10;

export async function insertCampaign(db: Knex, campaign: NewCampaign): Promise<CampaignRecord> {
  const [row] = await db<CampaignRow>('campaigns')
    .insert({
      id: randomId(CAMPAIGN_ID_LENGTH),
      bot_id: campaign.botId,
      name: campaign.name,
      params: JSON.stringify(campaign.params) as never,
      fields: JSON.stringify(campaign.fields) as never,
      start_step: campaign.startStep,
    })
    .returning<CampaignRow[]>(COLUMNS);
  return toCampaign(row!);
}

export async function listCampaigns(db: Knex, botId: string): Promise<CampaignRecord[]> {
  const rows = await db<CampaignRow>('campaigns')
    .where({ bot_id: botId })
    .whereNull('deleted_at')
    .orderBy('created_at')
    .select<CampaignRow[]>(COLUMNS);
  return rows.map(toCampaign);
}

/** A campaign that is not deleted; `botId` limits it to one bot's (null: any bot's). */
export async function findCampaign(db: Knex, id: string, botId: string | null): Promise<CampaignRecord | null> {
  const query = db<CampaignRow>('campaigns').where({ id }).whereNull('deleted_at');
  if (botId !== null) void query.andWhere({ bot_id: botId });
  const row = await query.first<CampaignRow | undefined>(COLUMNS);
  return row ? toCampaign(row) : null;
}

export type CampaignChanges = Partial<Pick<NewCampaign, 'name' | 'params' | 'fields' | 'startStep'>>;

export async function updateCampaign(
  db: Knex,
  botId: string,
  id: string,
  changes: CampaignChanges,
): Promise<CampaignRecord | null> {
  const update: Partial<Record<keyof CampaignRow, unknown>> = { updated_at: db.fn.now() };
  if (changes.name !== undefined) update.name = changes.name;
  if (changes.params !== undefined) update.params = JSON.stringify(changes.params);
  if (changes.fields !== undefined) update.fields = JSON.stringify(changes.fields);
  if (changes.startStep !== undefined) update.start_step = changes.startStep;
  const [row] = await db<CampaignRow>('campaigns')
    .where({ id, bot_id: botId })
    .whereNull('deleted_at')
    .update(update as never)
    .returning<CampaignRow[]>(COLUMNS);
  return row ? toCampaign(row) : null;
}

/** Deletes a campaign: its link answers 404 from now on; its clicks stay (and can still be claimed). */
export async function deleteCampaign(db: Knex, botId: string, id: string): Promise<boolean> {
  const count = await db<CampaignRow>('campaigns')
    .where({ id, bot_id: botId })
    .whereNull('deleted_at')
    .update({ deleted_at: db.fn.now() as never });
  return count > 0;
}

export interface CampaignStats {
  clicks: number;
  /** Clicks claimed by a /start. */
  starts: number;
}

/** Each campaign's clicks made and clicks claimed in [from, to) (either bound open when null), in one query. */
export async function campaignStats(
  db: Knex,
  campaignIds: readonly string[],
  from: Date | null,
  to: Date | null,
): Promise<Map<string, CampaignStats>> {
  const stats = new Map<string, CampaignStats>(campaignIds.map((id) => [id, { clicks: 0, starts: 0 }]));
  if (campaignIds.length === 0) return stats;
  const query = db('clicks').whereIn('campaign_id', campaignIds).groupBy('campaign_id');
  if (from) void query.andWhere('created_at', '>=', from);
  if (to) void query.andWhere('created_at', '<', to);
  const rows = await query.select<Array<{ campaign_id: string; clicks: string; starts: string }>>(
    'campaign_id',
    db.raw('count(*) AS clicks'),
    db.raw('count(claimed_chat_id) AS starts'),
  );
  for (const row of rows) stats.set(row.campaign_id, { clicks: Number(row.clicks), starts: Number(row.starts) });
  return stats;
}

/** What a click on a campaign link needs: the campaign and its bot's Telegram username. */
export interface CampaignLink {
  id: string;
  botId: string;
  name: string;
  params: string[];
  fields: Record<string, string>;
  /** Null while the bot has no Telegram token connected. */
  botUsername: string | null;
}

/** A campaign that is not deleted, with its bot's username, in one query (the click redirect's read). */
export async function findCampaignLink(db: Knex, id: string): Promise<CampaignLink | null> {
  const row = await db('campaigns as k')
    .join('bots as b', 'b.id', 'k.bot_id')
    .where('k.id', id)
    .whereNull('k.deleted_at')
    .first<
      | {
          id: string;
          bot_id: string;
          name: string;
          params: string[];
          fields: Record<string, string>;
          username: string | null;
        }
      | undefined
    >('k.id', 'k.bot_id', 'k.name', 'k.params', 'k.fields', db.raw("b.telegram_info->>'username' AS username"));
  if (!row) return null;
  return {
    id: row.id,
    botId: row.bot_id,
    name: row.name,
    params: row.params,
    fields: row.fields,
    botUsername: row.username,
  };
}
