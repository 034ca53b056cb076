import type { Knex } from 'knex';
import { findCampaign } from '../db/campaigns.js';
import { claimCampaignClick, claimClickByToken, dropWaitingUpdates, type ClickClaim } from '../db/clicks.js';
import type { DialogRef } from '../db/dialog-rows.js';
import { recordConversion } from '../db/conversions.js';
import { applyDialogUpdates, type DialogUpdateInput } from '../db/dialog-writer.js';
import type { StartClick } from '../domain/inputs/types.js';
import { campaignFields } from '../domain/tracker/click-request.js';
import { parseStartPayload } from '../domain/tracker/start-payload.js';
import { conversionUpdateInput, toUpdateInput } from '../jobs/apply-dialog-update.js';
import type { ClickUpdateJob } from '../jobs/dialog-update-job.js';

/**
 * Claims the click a /start's payload names for its dialog (API.md §5): `c_<token>` a campaign
 * link's click, `k_<campaignId>[__<clickid>]` a click made now. Postbacks that waited on the click
 * are applied to the dialog (with their own orders) before the /start is decided, then dropped.
 * Safe to repeat for the same input: it finds the click it claimed the first time.
 */
export async function claimStartClick(
  db: Knex,
  dialog: DialogRef,
  seq: number,
  payload: string | null,
): Promise<{ click: StartClick; journaled: boolean } | null> {
  const ref = { ...dialog, seq };
  const asked = parseStartPayload(payload);
  let claim: ClickClaim | null = null;
  if (asked.kind === 'click') {
    claim = await claimClickByToken(db, ref, asked.token);
  } else if (asked.kind === 'campaign') {
    const campaign = await findCampaign(db, asked.campaignId, dialog.botId);
    if (campaign) {
      const fields = campaignFields(campaign);
      claim = await claimCampaignClick(db, ref, { id: campaign.id, fields }, asked.clickid);
    }
  }
  if (!claim) return null;
  let journaled = false;
  if (claim.waiting.length > 0) {
    const updates: DialogUpdateInput[] = [];
    for (const { job, seq: order } of claim.waiting) {
      const { botId, patch, conversion } = job as ClickUpdateJob;
      const data = { botId, chatId: dialog.chatId, patch };
      if (!conversion) {
        updates.push(toUpdateInput(data, order));
        continue;
      }
      const recorded = await recordConversion(db, { botId, chatId: dialog.chatId, seq: order }, conversion);
      const update = conversionUpdateInput(data, conversion, order, recorded);
      if (update) updates.push(update);
    }
    if (updates.length > 0) await applyDialogUpdates(db, updates);
    journaled = updates.some((update) => update.input !== undefined);
    await dropWaitingUpdates(
      db,
      claim.click.id,
      claim.waiting.map((waiting) => waiting.seq),
    );
  }
  const { clickid, fields, startStep, campaignId, campaign, ad } = claim.click;
  return {
    click: { clickid, fields, startStepKey: startStep, campaignId, campaign, ad, fresh: claim.fresh },
    journaled,
  };
}
