import type { Knex } from 'knex';
import type { BotRecord } from '../db/bots.js';
import { listFields } from '../db/bots.js';
import { dialogExists } from '../db/dialogs.js';
import { findStepRef, listStepRefs } from '../db/script-steps.js';
import type { DialogPatch, FieldValue } from '../domain/dialog.js';
import { DomainError, unknownDialogError } from '../domain/errors.js';
import { parseFieldValue, type RawValue } from '../domain/field-types.js';
import type { ChatUpdateJob } from '../jobs/dialog-update-job.js';

/**
 * What an operator does to a dialog (API.md §3). Each is queued as an input of the dialog, in its
 * one order with postbacks, Telegram updates and delays: a takeover or hand-back is a status move
 * (a postback's), fields and tags merge as a postback's do, and a message is sent by the worker
 * that handles the dialog, through the bot's and the chat's send limits.
 */
export type OperatorAction =
  /** Status `manual`: the script stops answering; the operator does. */
  | { kind: 'takeover' }
  /** Status `auto`; with `stepId`, the dialog moves to that step (which runs, as a postback's move does). */
  | { kind: 'release'; stepId?: string }
  /** A plain text for the user, recorded in the transcript as the operator's. */
  | { kind: 'message'; text: string }
  /** Fields to set (null clears one) and tags to add or remove. */
  | { kind: 'update'; fields?: Record<string, RawValue>; addTags?: string[]; removeTags?: string[] };

export interface OperatorDeps {
  db: Knex;
  /** Queues an input of a known dialog; resolves with its acceptance order. */
  queueDialogInput(job: ChatUpdateJob): Promise<string>;
}

/** Checks the action against the bot and the dialog (throws DomainError), then queues it; resolves with its order. */
export async function performOperatorAction(
  deps: OperatorDeps,
  bot: BotRecord,
  chatId: number,
  action: OperatorAction,
  requestId?: string,
): Promise<{ seq: string }> {
  if (!(await dialogExists(deps.db, { botId: bot.id, chatId }))) throw unknownDialogError();
  const base = { botId: bot.id, chatId, ...(requestId ? { requestId } : {}) };
  let job: ChatUpdateJob;
  switch (action.kind) {
    case 'takeover':
      job = { ...base, patch: { status: 'manual' } };
      break;
    case 'release':
      job = { ...base, patch: { status: 'auto', ...(await releaseStep(deps.db, bot.id, action.stepId)) } };
      break;
    case 'message':
      job = { ...base, operatorMessage: { text: action.text } };
      break;
    case 'update':
      job = { ...base, patch: await updatePatch(deps.db, bot.id, action) };
      break;
  }
  return { seq: await deps.queueDialogInput(job) };
}

/** The move of a hand-back at a step: the step's id and key (the key keeps the move across a script upload). */
async function releaseStep(db: Knex, botId: string, stepId: string | undefined): Promise<DialogPatch> {
  if (stepId === undefined) return {};
  const step = findStepRef(await listStepRefs(db, botId), stepId);
  if (!step) {
    throw new DomainError('unprocessable', 'unknown_step', "no step with this id or key in the bot's script", {
      param: 'stepId',
    });
  }
  return { stepId: step.id, stepKey: step.key };
}

/** Fields parsed by their definitions (as a postback's are), and tags. */
async function updatePatch(
  db: Knex,
  botId: string,
  action: Extract<OperatorAction, { kind: 'update' }>,
): Promise<DialogPatch> {
  const patch: DialogPatch = {};
  const entries = Object.entries(action.fields ?? {});
  if (entries.length > 0) {
    const definitions = new Map((await listFields(db, botId)).map((field) => [field.key, field]));
    const fields: Record<string, FieldValue | null> = {};
    for (const [key, raw] of entries) {
      const parsed = parseFieldValue(definitions.get(key), raw);
      if (!parsed.ok) {
        throw new DomainError('unprocessable', 'invalid_field_value', `fields.${key} ${parsed.reason}`, {
          param: `fields.${key}`,
        });
      }
      fields[key] = parsed.value;
    }
    patch.fields = fields;
  }
  if (action.addTags?.length) patch.addTags = [...new Set(action.addTags)];
  if (action.removeTags?.length) patch.removeTags = [...new Set(action.removeTags)];
  if (Object.keys(patch).length === 0) {
    throw new DomainError('invalid', 'invalid_body', 'name fields, addTags or removeTags to change', {});
  }
  return patch;
}
