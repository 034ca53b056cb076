// Every management API route (API.md §3, §5) with the zod schemas that validate its input. A route
// registered on the management router and missing here (or described here and not registered)
// fails test/integration/openapi.test.ts.
import { z } from 'zod';
import { STEP_TYPES } from '../../domain/script/types.js';
import { createBotSchema, deleteBotQuerySchema, updateBotSchema } from '../routes/bots.js';
import { createBroadcastSchema } from '../routes/broadcasts.js';
import { createCampaignSchema, statsQuerySchema, updateCampaignSchema } from '../routes/campaigns.js';
import { deadLetterListQuery } from '../routes/dead-letters.js';
import { deliveryListQuery, replaySchema } from '../routes/deliveries.js';
import { createDestinationSchema, patchDestinationSchema } from '../routes/destinations.js';
import { transcriptQuerySchema } from '../routes/dialog-messages.js';
import { dialogListQuerySchema } from '../routes/dialogs.js';
import { fieldSchema } from '../routes/fields.js';
import { dialogUpdateSchema, operatorMessageSchema, releaseSchema } from '../routes/operator.js';
import { createWebhookSchema } from '../routes/webhooks.js';

export type HttpMethod = 'get' | 'post' | 'put' | 'patch' | 'delete';

export interface Operation {
  method: HttpMethod;
  /** As registered on the router under /api/v1, `:param` and all: `/bots/:botId`. */
  path: string;
  summary: string;
  tag: string;
  query?: z.ZodObject;
  body?: z.ZodType;
  /** The body may be left out (an empty request is `{}`). */
  bodyOptional?: boolean;
  /** The status a success is answered with, and what it carries. */
  success: readonly [status: number, description: string];
  /** Refusals besides 401 (every call) and 400 (every call with input) and 404 (every call naming an id). */
  errors?: readonly number[];
}

/**
 * The script document of PUT …/script in outline: it is checked by the script validator, which
 * lists every problem at once (422 `invalid_script`), not by a zod schema; API.md §3 describes it.
 */
const scriptDocumentSchema = z.looseObject({
  start: z.string().describe('the key of the first step'),
  steps: z.array(z.looseObject({ key: z.string(), type: z.enum(STEP_TYPES), next: z.string().optional() })).min(1),
  onConversion: z.array(z.looseObject({})).optional(),
});

export const MANAGEMENT_OPERATIONS: readonly Operation[] = [
  {
    method: 'get',
    path: '/openapi.json',
    tag: 'api',
    summary: 'This description (OpenAPI 3.1)',
    success: [200, 'the OpenAPI document'],
  },

  {
    method: 'post',
    path: '/bots',
    tag: 'bots',
    summary: 'Create a bot',
    body: createBotSchema,
    success: [201, 'the bot'],
    errors: [422],
  },
  { method: 'get', path: '/bots', tag: 'bots', summary: 'List bots', success: [200, '{items: [bot…]}'] },
  { method: 'get', path: '/bots/:botId', tag: 'bots', summary: 'A bot', success: [200, 'the bot'] },
  {
    method: 'patch',
    path: '/bots/:botId',
    tag: 'bots',
    summary: 'Change a bot (name, timezone, Telegram token)',
    body: updateBotSchema,
    success: [200, 'the bot'],
    errors: [422],
  },
  {
    method: 'delete',
    path: '/bots/:botId',
    tag: 'bots',
    summary: 'Delete a bot and all its dialogs',
    query: deleteBotQuerySchema,
    success: [204, 'deleted'],
  },
  {
    method: 'post',
    path: '/bots/:botId/signing-secret',
    tag: 'bots',
    summary: "A new signing secret for the bot's Send Webhook calls",
    success: [201, '{secret}'],
  },
  {
    method: 'delete',
    path: '/bots/:botId/signing-secret',
    tag: 'bots',
    summary: "Stop signing the bot's Send Webhook calls",
    success: [204, 'removed'],
  },

  {
    method: 'put',
    path: '/bots/:botId/fields/:key',
    tag: 'fields',
    summary: 'Define a custom field',
    body: fieldSchema,
    success: [200, 'the field'],
  },
  {
    method: 'get',
    path: '/bots/:botId/fields',
    tag: 'fields',
    summary: "The bot's custom fields",
    success: [200, '{fields: [field…]}'],
  },

  {
    method: 'post',
    path: '/bots/:botId/webhooks',
    tag: 'webhooks',
    summary: 'Create a postback URL',
    body: createWebhookSchema,
    success: [201, '{id, name, url, rateLimit, createdAt}'],
  },
  {
    method: 'get',
    path: '/bots/:botId/webhooks',
    tag: 'webhooks',
    summary: "The bot's postback URLs",
    success: [200, '{webhooks: [webhook…]}'],
  },
  {
    method: 'delete',
    path: '/bots/:botId/webhooks/:id',
    tag: 'webhooks',
    summary: 'Delete a postback URL (it answers 404 at once)',
    success: [204, 'deleted'],
  },

  {
    method: 'put',
    path: '/bots/:botId/script',
    tag: 'script',
    summary: "Replace the bot's script",
    body: scriptDocumentSchema,
    success: [200, '{steps: [{key, id}…]}'],
    errors: [422],
  },
  {
    method: 'get',
    path: '/bots/:botId/script',
    tag: 'script',
    summary: "The bot's script, each step with its id",
    success: [200, 'the script document'],
  },

  {
    method: 'get',
    path: '/bots/:botId/dialogs',
    tag: 'dialogs',
    summary: 'List dialogs, newest activity first (also field.KEY=value filters)',
    query: dialogListQuerySchema,
    success: [200, '{items: [dialog…], nextCursor}'],
  },
  {
    method: 'get',
    path: '/bots/:botId/dialogs/:chatId',
    tag: 'dialogs',
    summary: 'A dialog with its conversions',
    success: [200, 'the dialog'],
  },
  {
    method: 'get',
    path: '/bots/:botId/dialogs/:chatId/messages',
    tag: 'dialogs',
    summary: "A dialog's transcript, oldest first",
    query: transcriptQuerySchema,
    success: [200, '{items: [message…], nextCursor}'],
  },

  {
    method: 'get',
    path: '/bots/:botId/deliveries',
    tag: 'deliveries',
    summary: 'Outbound webhook deliveries with their attempts',
    query: deliveryListQuery,
    success: [200, '{deliveries: [delivery…]}'],
  },
  {
    method: 'post',
    path: '/deliveries/:id/retry',
    tag: 'deliveries',
    summary: 'Replay a failed delivery',
    success: [202, '{ok, id, messageId}'],
    errors: [409],
  },
  {
    method: 'post',
    path: '/bots/:botId/deliveries/retry',
    tag: 'deliveries',
    summary: 'Replay the failed deliveries since a time',
    body: replaySchema,
    success: [202, '{ok, replayed}'],
  },

  {
    method: 'get',
    path: '/bots/:botId/dead-letters',
    tag: 'dead-letters',
    summary: 'Dialog inputs set aside after failing too often',
    query: deadLetterListQuery,
    success: [200, '{items: [dead input…]}'],
  },
  {
    method: 'post',
    path: '/bots/:botId/dead-letters/:chatId/:seq/retry',
    tag: 'dead-letters',
    summary: 'Put a dead input back to be handled again',
    success: [202, '{ok, chatId, seq}'],
  },

  {
    method: 'post',
    path: '/bots/:botId/destinations',
    tag: 'destinations',
    summary: 'Create a destination (postbacks onwards)',
    body: createDestinationSchema,
    success: [201, 'the destination'],
  },
  {
    method: 'get',
    path: '/bots/:botId/destinations',
    tag: 'destinations',
    summary: "The bot's destinations",
    success: [200, '{destinations: [destination…]}'],
  },
  {
    method: 'get',
    path: '/bots/:botId/destinations/:id',
    tag: 'destinations',
    summary: 'A destination',
    success: [200, 'the destination'],
  },
  {
    method: 'patch',
    path: '/bots/:botId/destinations/:id',
    tag: 'destinations',
    summary: 'Change a destination',
    body: patchDestinationSchema,
    success: [200, 'the destination'],
  },
  {
    method: 'delete',
    path: '/bots/:botId/destinations/:id',
    tag: 'destinations',
    summary: 'Delete a destination',
    success: [204, 'deleted'],
  },

  {
    method: 'post',
    path: '/bots/:botId/campaigns',
    tag: 'campaigns',
    summary: 'Create a campaign link',
    body: createCampaignSchema,
    success: [201, 'the campaign with its link and telegramLink'],
    errors: [409, 422],
  },
  {
    method: 'get',
    path: '/bots/:botId/campaigns',
    tag: 'campaigns',
    summary: "The bot's campaigns",
    success: [200, '{campaigns: [campaign…]}'],
  },
  {
    method: 'get',
    path: '/bots/:botId/campaigns/:id',
    tag: 'campaigns',
    summary: 'A campaign',
    success: [200, 'the campaign'],
  },
  {
    method: 'patch',
    path: '/bots/:botId/campaigns/:id',
    tag: 'campaigns',
    summary: 'Change a campaign',
    body: updateCampaignSchema,
    success: [200, 'the campaign'],
    errors: [422],
  },
  {
    method: 'delete',
    path: '/bots/:botId/campaigns/:id',
    tag: 'campaigns',
    summary: 'Delete a campaign (its link answers 404)',
    success: [204, 'deleted'],
  },
  {
    method: 'get',
    path: '/bots/:botId/campaigns/:id/stats',
    tag: 'campaigns',
    summary: "A campaign's clicks, starts and conversions",
    query: statsQuerySchema,
    success: [200, '{clicks, starts, conversions…}'],
  },

  // The operator's hand on a dialog (src/http/routes/operator.ts): each is queued as an input of the dialog.
  {
    method: 'post',
    path: '/bots/:botId/dialogs/:chatId/takeover',
    tag: 'operator',
    summary: 'Take a dialog over (status manual)',
    success: [202, '{ok, seq}'],
  },
  {
    method: 'post',
    path: '/bots/:botId/dialogs/:chatId/release',
    tag: 'operator',
    summary: 'Hand a dialog back to the script (status auto), optionally at a step',
    body: releaseSchema,
    bodyOptional: true,
    success: [202, '{ok, seq}'],
  },
  {
    method: 'post',
    path: '/bots/:botId/dialogs/:chatId/messages',
    tag: 'operator',
    summary: 'Write to the user as the operator',
    body: operatorMessageSchema,
    success: [202, '{ok, seq}'],
  },
  {
    method: 'patch',
    path: '/bots/:botId/dialogs/:chatId',
    tag: 'operator',
    summary: "Set a dialog's fields and tags",
    body: dialogUpdateSchema,
    success: [202, '{ok, seq}'],
  },

  // Broadcasts (src/http/routes/broadcasts.ts).
  {
    method: 'post',
    path: '/bots/:botId/broadcasts',
    tag: 'broadcasts',
    summary: 'Broadcast a message, or a step, to an audience (taken when it starts)',
    body: createBroadcastSchema,
    success: [201, 'the broadcast with its progress'],
    errors: [422],
  },
  {
    method: 'get',
    path: '/bots/:botId/broadcasts',
    tag: 'broadcasts',
    summary: "The bot's broadcasts, newest first",
    success: [200, '{items: [broadcast…]}'],
  },
  {
    method: 'get',
    path: '/bots/:botId/broadcasts/:id',
    tag: 'broadcasts',
    summary: 'A broadcast: planned, sent, blocked, failed, skipped, interrupted, remaining, estimatedEnd',
    success: [200, 'the broadcast with its progress'],
  },
  ...(['pause', 'resume', 'cancel'] as const).map((action): Operation => ({
    method: 'post',
    path: `/bots/:botId/broadcasts/:id/${action}`,
    tag: 'broadcasts',
    summary: `${action[0]!.toUpperCase()}${action.slice(1)} a broadcast`,
    success: [200, 'the broadcast with its progress'],
    errors: [409],
  })),
];
