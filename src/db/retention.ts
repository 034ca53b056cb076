import type { Knex } from 'knex';

/** How long finished rows are kept, in days (config.retention). */
export interface RetentionDays {
  deliveriesDays: number;
  messagesDays: number;
  unclaimedClicksDays: number;
  deadInputsDays: number;
  handledInputsDays: number;
  conversionEventsDays: number;
}

/**
 * What retention deletes, in the order a run goes through them. Never deleted: dialogs, conversions
 * (a repeat of an old sale must still be known), claimed clicks (every clickid a dialog claimed
 * resolves to it), pending deliveries, open inputs, configuration.
 */
export const RETENTION_TARGETS = [
  'deliveries',
  'dialog_messages',
  'handled_inputs',
  'dead_inputs',
  'conversion_events',
  'click_waiting_updates',
  'unclaimed_clicks',
] as const;

export type RetentionTarget = (typeof RETENTION_TARGETS)[number];

/**
 * One statement per target (`:days` kept, `:limit` rows a batch). Each picks at most a batch
 * of old rows through an index and deletes them in the same statement; the conditions are checked
 * again on the rows deleted, so one changed meanwhile (a delivery replayed, a dead input revived,
 * a click claimed) is left alone. Every row deleted is committed with its batch: locks are held
 * for one batch only, and several processes running this at once only share the work.
 *
 * The order counter must never go back (see SequenceFloor and highestSequence): an input or a
 * waiting postback is deleted only below the highest order the journal holds, and the journal's
 * highest input is never deleted, so the highest order Postgres holds never drops.
 */
const STATEMENTS: Record<RetentionTarget, string> = {
  // Finished Send Webhook deliveries (delivered or given up); their attempts go with them (cascade).
  deliveries: `
    DELETE FROM deliveries WHERE id = ANY(ARRAY(
      SELECT id FROM deliveries WHERE state IN ('succeeded', 'failed') AND finished_at < now() - make_interval(days => :days)
      ORDER BY finished_at LIMIT :limit)) AND state IN ('succeeded', 'failed') AND finished_at < now() - make_interval(days => :days)`,
  dialog_messages: `
    DELETE FROM dialog_messages WHERE id = ANY(ARRAY(
      SELECT id FROM dialog_messages WHERE created_at < now() - make_interval(days => :days) ORDER BY created_at LIMIT :limit))`,
  // Handled inputs: what is kept is only their dedupe key (a Telegram update redelivered, a delay's
  // alarm fired twice), which the window covers.
  handled_inputs: `
    DELETE FROM dialog_inputs WHERE ctid = ANY(ARRAY(
      SELECT ctid FROM dialog_inputs
      WHERE state IN ('done', 'superseded') AND updated_at < now() - make_interval(days => :days)
        AND seq < (SELECT max(seq) FROM dialog_inputs)
      ORDER BY updated_at LIMIT :limit)) AND state IN ('done', 'superseded') AND updated_at < now() - make_interval(days => :days)`,
  // Dead inputs no one revived. One whose delay the dialog still holds stays: the sweeper would fire
  // that delay again and, its key forgotten, run the input set aside once more.
  dead_inputs: `
    DELETE FROM dialog_inputs WHERE ctid = ANY(ARRAY(
      SELECT ctid FROM dialog_inputs i
      WHERE state = 'dead' AND updated_at < now() - make_interval(days => :days)
        AND seq < (SELECT max(seq) FROM dialog_inputs)
        AND NOT EXISTS (SELECT 1 FROM dialogs d WHERE d.bot_id = i.bot_id AND d.chat_id = i.chat_id
          AND i.dedupe_key = 'timer:' || (d.timer->>'scheduledBy'))
      ORDER BY updated_at LIMIT :limit)) AND state = 'dead' AND updated_at < now() - make_interval(days => :days)`,
  // The log of conversion calls; a retry of a call finds its row long before this.
  conversion_events: `
    DELETE FROM conversion_events WHERE id = ANY(ARRAY(
      SELECT id FROM conversion_events WHERE created_at < now() - make_interval(days => :days) ORDER BY created_at LIMIT :limit))`,
  // Postbacks waiting on a click nobody claimed (a claimed click's are being applied: kept).
  click_waiting_updates: `
    DELETE FROM click_waiting_updates WHERE ctid = ANY(ARRAY(
      SELECT ctid FROM click_waiting_updates w
      WHERE created_at < now() - make_interval(days => :days)
        AND seq < (SELECT max(seq) FROM dialog_inputs)
        AND EXISTS (SELECT 1 FROM clicks c WHERE c.id = w.click_id AND c.claimed_chat_id IS NULL)
      ORDER BY created_at LIMIT :limit)) AND created_at < now() - make_interval(days => :days)`,
  // Clicks nobody claimed, once nothing waits on them (what did is deleted just before).
  unclaimed_clicks: `
    DELETE FROM clicks c WHERE id = ANY(ARRAY(
      SELECT id FROM clicks k
      WHERE claimed_chat_id IS NULL AND created_at < now() - make_interval(days => :days)
        AND NOT EXISTS (SELECT 1 FROM click_waiting_updates w WHERE w.click_id = k.id)
      ORDER BY created_at LIMIT :limit)) AND claimed_chat_id IS NULL AND created_at < now() - make_interval(days => :days)
      AND NOT EXISTS (SELECT 1 FROM click_waiting_updates w WHERE w.click_id = c.id)`,
};

/** The days kept for a target. */
export function retentionDays(days: RetentionDays, target: RetentionTarget): number {
  switch (target) {
    case 'deliveries':
      return days.deliveriesDays;
    case 'dialog_messages':
      return days.messagesDays;
    case 'handled_inputs':
      return days.handledInputsDays;
    case 'dead_inputs':
      return days.deadInputsDays;
    case 'conversion_events':
      return days.conversionEventsDays;
    case 'click_waiting_updates':
    case 'unclaimed_clicks':
      return days.unclaimedClicksDays;
  }
}

/** Deletes one batch (at most `limit` rows) of a target's rows older than `days`; returns how many. */
export async function deleteRetentionBatch(
  db: Knex,
  target: RetentionTarget,
  days: number,
  limit: number,
): Promise<number> {
  const result = await db.raw<{ rowCount: number }>(STATEMENTS[target], { days, limit });
  return result.rowCount;
}
