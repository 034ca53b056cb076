// The parameters of the postback endpoint's two routes (API.md §1 and §5), as the API description
// shows them. The routes read them by hand (aliases, `fields.KEY`, a body value winning over the
// query's); the description's test checks that every name the conversion parser reads is here.
import { z } from 'zod';
import { DIALOG_STATUSES } from '../../domain/dialog.js';
import { CHAT_ID_PATTERN } from '../../domain/postback.js';
import { CLICK_ID_PATTERN } from '../../domain/tracker/click-request.js';
import { CONVERSION_STATUSES } from '../../domain/tracker/conversion.js';

const chatId = z
  .string()
  .regex(CHAT_ID_PATTERN)
  .describe('Telegram chat id: a decimal integer, may be negative (groups: -100…), |x| ≤ 2^53−1');
const clickid = z.string().regex(CLICK_ID_PATTERN);
const tags = z.string().describe('comma-separated tags');
const eventId = z
  .string()
  .min(1)
  .max(255)
  .describe('a repeat with the same value within 24 h is acknowledged and not applied again');

/** `…/updateDialog`: every other name is a custom field of that name (`fields.KEY`, `details.KEY`, `fields[KEY]` too). */
export const updateDialogParamsSchema = z.object({
  chatId: chatId.optional().describe('the dialog; required unless clickid is given (alias chat_id)'),
  chat_id: chatId.optional().describe('alias of chatId'),
  clickid: clickid
    .optional()
    .describe('instead of chatId: the dialog that claimed this click (aliases subid, click_id, cid)'),
  subid: clickid.optional().describe('alias of clickid'),
  click_id: clickid.optional().describe('alias of clickid'),
  cid: clickid.optional().describe('alias of clickid'),
  stepId: z
    .string()
    .optional()
    .describe("move the dialog to this step: the step's id (UUID) or its key (alias step_id)"),
  step_id: z.string().optional().describe('alias of stepId'),
  status: z.enum(DIALOG_STATUSES).optional().describe('case-insensitive'),
  tags: tags.optional().describe('comma-separated tags to add'),
  addTags: tags.optional().describe('comma-separated tags to add'),
  removeTags: tags.optional().describe('comma-separated tags to remove'),
  eventId: eventId.optional(),
});

const conversionStatusList = z.string().describe("comma-separated words of the network's that mean this status");
const payout = z.string().regex(/^-?\d{1,12}(?:\.\d{1,8})?$/);
const token = z.string().regex(/^[A-Za-z0-9_.:-]{1,100}$/);

/** `…/conversion`: `fields.*`, `tags`, `tracker.*` and `eventId` are read as in updateDialog. */
export const conversionParamsSchema = z.object({
  clickid: clickid.describe('required (or one of its aliases subid, click_id, cid)').optional(),
  subid: clickid.optional().describe('alias of clickid'),
  click_id: clickid.optional().describe('alias of clickid'),
  cid: clickid.optional().describe('alias of clickid'),
  status: z
    .string()
    .optional()
    .describe(
      `${CONVERSION_STATUSES.join(', ')} (default sale), or a word listed in lead_status, sale_status or rejected_status`,
    ),
  payout: payout.optional().describe('the amount (aliases revenue, sum)'),
  revenue: payout.optional().describe('alias of payout'),
  sum: payout.optional().describe('alias of payout'),
  currency: z
    .string()
    .regex(/^[A-Za-z]{3}$/)
    .optional()
    .describe('ISO 4217 code'),
  tid: token
    .optional()
    .describe("the network's conversion id: a repeat sale needs its own (aliases txid, transaction_id, action_id)"),
  txid: token.optional().describe('alias of tid'),
  transaction_id: token.optional().describe('alias of tid'),
  action_id: token.optional().describe('alias of tid'),
  event: token.optional().describe('e.g. registration, deposit; default "default" (alias goal)'),
  goal: token.optional().describe('alias of event'),
  lead_status: conversionStatusList.optional(),
  sale_status: conversionStatusList.optional(),
  rejected_status: conversionStatusList.optional(),
  tags: tags.optional().describe('comma-separated tags to add'),
  eventId: eventId.optional(),
});
