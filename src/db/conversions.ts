import type { Knex } from 'knex';
import {
  decideConversionMove,
  type ConversionMove,
  type ConversionRequest,
  type ConversionStatus,
  type RecordedConversion,
} from '../domain/tracker/conversion.js';

interface ConversionRow {
  id: string;
  bot_id: string;
  clickid: string;
  event: string;
  tid: string;
  status: ConversionStatus;
  payout: string | null;
  currency: string | null;
  chat_id: string | null;
  campaign_id: string | null;
  created_at: Date;
  updated_at: Date;
}

/** Postgres keeps numeric(20,8): `10.50000000` back to `10.5`, as the request normalised it. */
function payoutText(value: string | null): string | null {
  if (value === null) return null;
  const trimmed = value.includes('.') ? value.replace(/0+$/, '').replace(/\.$/, '') : value;
  return trimmed === '-0' ? '0' : trimmed;
}

function recordedOf(row: Pick<ConversionRow, 'status' | 'payout' | 'currency'>): RecordedConversion {
  return { status: row.status, payout: payoutText(row.payout), currency: row.currency };
}

/** The conversion recorded under (bot, clickid, event, tid), if any. */
export async function findConversion(
  db: Knex,
  botId: string,
  request: Pick<ConversionRequest, 'clickid' | 'event' | 'tid'>,
): Promise<RecordedConversion | null> {
  const row = await db<ConversionRow>('conversions')
    .where({ bot_id: botId, clickid: request.clickid, event: request.event, tid: request.tid })
    .first('status', 'payout', 'currency');
  return row ? recordedOf(row) : null;
}

function eventRow(botId: string, request: ConversionRequest, outcome: string, extra: Record<string, unknown>) {
  return {
    bot_id: botId,
    clickid: request.clickid,
    event: request.event,
    tid: request.tid,
    status: request.status,
    payout: request.payout,
    currency: request.currency,
    outcome,
    ...extra,
  };
}

/** Records a call the web tier answered as ignored (a move the statuses do not allow). */
export async function recordIgnoredConversion(
  db: Knex,
  botId: string,
  request: ConversionRequest,
  reason: string,
): Promise<void> {
  await db('conversion_events').insert(eventRow(botId, request, 'ignored', { reason }));
}

export interface RecordedOutcome {
  /** What the call was to the conversion: only `new` and `moved` change the dialog. */
  outcome: ConversionMove['kind'];
  conversionId: string | null;
  /** The click converted: its campaign and what it keeps for ad platforms. */
  click: { campaignId: string | null; campaign: string | null; ad: Record<string, string> };
  /** When the conversion took this status, in Unix seconds. */
  eventTime: number;
}

/**
 * Records an accepted conversion for the dialog it reached, with its order: new, a status move,
 * a duplicate or an ignored move (decided again here, under the conversion's lock, since two
 * requests may have raced past the web tier's check). A retry of the same order finds what the
 * first try decided.
 */
export async function recordConversion(
  db: Knex,
  target: { botId: string; chatId: number; seq: number },
  request: ConversionRequest,
): Promise<RecordedOutcome> {
  return db.transaction(async (trx) => {
    const clickRow = await trx('clicks as c')
      .leftJoin('campaigns as k', 'k.id', 'c.campaign_id')
      .where({ 'c.bot_id': target.botId, 'c.clickid': request.clickid })
      .first<{ campaign_id: string | null; campaign: string | null; ad: Record<string, string> } | undefined>(
        'c.campaign_id',
        'k.name as campaign',
        'c.ad',
      );
    const click = {
      campaignId: clickRow?.campaign_id ?? null,
      campaign: clickRow?.campaign ?? null,
      ad: clickRow?.ad ?? {},
    };
    const done = await trx('conversion_events')
      .where({ bot_id: target.botId, seq: target.seq })
      .first<{ outcome: ConversionMove['kind']; conversion_id: string | null; created_at: Date } | undefined>(
        'outcome',
        'conversion_id',
        'created_at',
      );
    if (done) {
      return {
        outcome: done.outcome,
        conversionId: done.conversion_id,
        click,
        eventTime: Math.floor(done.created_at.getTime() / 1000),
      };
    }

    const key = { bot_id: target.botId, clickid: request.clickid, event: request.event, tid: request.tid };
    // The row is made (and locked) by the first of racing calls; a fresh one has an empty status
    // until this call decides it (inside this transaction: nobody else ever sees it empty).
    await trx.raw(
      `INSERT INTO conversions (bot_id, clickid, event, tid, status, payout, currency, chat_id, campaign_id)
       VALUES (?, ?, ?, ?, '', NULL, NULL, ?, ?) ON CONFLICT (bot_id, clickid, event, tid) DO NOTHING`,
      [target.botId, request.clickid, request.event, request.tid, target.chatId, click.campaignId],
    );
    const row = (await trx<ConversionRow>('conversions').where(key).forUpdate().first())!;
    const move = decideConversionMove((row.status as string) === '' ? null : recordedOf(row), request);
    if (move.kind === 'new' || move.kind === 'moved') {
      await trx('conversions').where({ id: row.id }).update({
        status: request.status,
        payout: request.payout,
        currency: request.currency,
        chat_id: target.chatId,
        updated_at: trx.fn.now(),
      });
    }
    await trx('conversion_events').insert(
      eventRow(target.botId, request, move.kind, {
        conversion_id: row.id,
        seq: target.seq,
        reason: move.kind === 'ignored' ? move.reason : null,
      }),
    );
    return { outcome: move.kind, conversionId: row.id, click, eventTime: Math.floor(Date.now() / 1000) };
  });
}

export interface DialogConversion {
  clickid: string;
  event: string;
  tid: string | null;
  status: ConversionStatus;
  payout: string | null;
  currency: string | null;
  createdAt: string;
  updatedAt: string;
}

/** A dialog's conversions, oldest first. */
export async function listDialogConversions(db: Knex, botId: string, chatId: number): Promise<DialogConversion[]> {
  return (await listConversionsOfDialogs(db, botId, [chatId])).get(chatId) ?? [];
}

/** The conversions of several dialogs of a bot in one query, each dialog's oldest first. */
export async function listConversionsOfDialogs(
  db: Knex,
  botId: string,
  chatIds: readonly number[],
): Promise<Map<number, DialogConversion[]>> {
  const byChat = new Map<number, DialogConversion[]>();
  if (chatIds.length === 0) return byChat;
  const rows = await db('conversions')
    .where({ bot_id: botId })
    .whereIn('chat_id', chatIds)
    .orderBy('created_at')
    .select<Array<ConversionRow & { chat_id: number }>>(
      'chat_id',
      'clickid',
      'event',
      'tid',
      'status',
      'payout',
      'currency',
      'created_at',
      'updated_at',
    );
  for (const row of rows) {
    const list = byChat.get(row.chat_id) ?? [];
    list.push({
      clickid: row.clickid,
      event: row.event,
      tid: row.tid === '' ? null : row.tid,
      status: row.status,
      payout: payoutText(row.payout),
      currency: row.currency,
      createdAt: row.created_at.toISOString(),
      updatedAt: row.updated_at.toISOString(),
    });
    byChat.set(row.chat_id, list);
  }
  return byChat;
}

export interface ConversionStats {
  /** Conversions by their current status. */
  conversions: Record<string, number>;
  /** Sums of the payouts of sales, by currency ('' when none was sent). */
  payouts: Record<string, string>;
}

/** Each campaign's conversions made in [from, to), in two queries whatever the number of campaigns. */
export async function campaignConversionStats(
  db: Knex,
  campaignIds: readonly string[],
  from: Date | null,
  to: Date | null,
): Promise<Map<string, ConversionStats>> {
  const stats = new Map<string, ConversionStats>(campaignIds.map((id) => [id, { conversions: {}, payouts: {} }]));
  if (campaignIds.length === 0) return stats;
  const base = () => {
    const query = db('conversions').whereIn('campaign_id', campaignIds);
    if (from) void query.andWhere('created_at', '>=', from);
    if (to) void query.andWhere('created_at', '<', to);
    return query;
  };
  const [byStatus, sums] = await Promise.all([
    base()
      .groupBy('campaign_id', 'status')
      .select<{ campaign_id: string; status: string; count: string }[]>(
        'campaign_id',
        'status',
        db.raw('count(*) AS count'),
      ),
    base()
      .where({ status: 'sale' })
      .whereNotNull('payout')
      .groupBy('campaign_id', 'currency')
      .select<{ campaign_id: string; currency: string | null; sum: string }[]>(
        'campaign_id',
        'currency',
        db.raw('sum(payout)::text AS sum'),
      ),
  ]);
  for (const row of byStatus) stats.get(row.campaign_id)!.conversions[row.status] = Number(row.count);
  for (const row of sums) stats.get(row.campaign_id)!.payouts[row.currency ?? ''] = payoutText(row.sum) ?? '0';
  return stats;
}
