/** The inputs of a dialog: everything that can move its script, in one acceptance order. */
import type { DialogPatch, DialogState, DialogStatus } from '../dialog.js';
import type { Effect } from '../engine/types.js';

/** What is journaled for an input (the JSON `payload` of a `dialog_inputs` row). */
export type DialogInput =
  /** A Telegram update; `tokenKey` names the token it came through (a new token is a new bot). */
  | { kind: 'telegram'; update: unknown; tokenKey: string }
  /** A postback's step move and/or status; `stepKey` resolves the move if the step id is gone. */
  | { kind: 'move'; stepId?: string; stepKey?: string; status?: DialogStatus }
  /** A delay ended: continue at `stepId` (or the step now keyed `stepKey`) if the run that set it is still the newest move. */
  | { kind: 'timer'; scheduledBy: number; stepId: string | null; stepKey: string | null }
  /** A network's conversion for a click the dialog claimed, recorded as new or as a status move. */
  | { kind: 'conversion'; conversion: DialogConversionInput }
  /** An operator's text for the user (plain text: it is escaped for Telegram's HTML when decided). */
  | { kind: 'operator_message'; text: string };

/** A conversion as the dialog's script sees it (`{{conversion.*}}`). */
export interface DialogConversionInput {
  clickid: string;
  event: string;
  status: 'lead' | 'sale' | 'rejected';
  payout: string | null;
  currency: string | null;
  /** '' when the network sent none. */
  tid: string;
  campaignId?: string | null;
  campaign?: string | null;
  /** What the click keeps for ad platforms (ip, user_agent, fbc, …). */
  click?: Record<string, string>;
  /** Stable per conversion and status (the receiver's dedupe key). */
  eventKey?: string;
  /** When it was recorded, in Unix seconds. */
  eventTime?: number;
}

/** The user as a /start tells it. */
export interface StartedUser {
  username: string | null;
  name: string | null;
  firstName: string | null;
  lastName: string | null;
}

/** The click a /start claimed (a campaign link's `c_…` or `k_…` payload). */
export interface StartClick {
  clickid: string;
  /** The tracker fields the click brings (`clickid`, `campaign`, the campaign's params and fields). */
  fields: Record<string, string>;
  /** The key of the step the campaign starts dialogs at; null: the script's start. */
  startStepKey: string | null;
  campaignId?: string | null;
  /** The campaign's name. */
  campaign?: string | null;
  /** What the click keeps for ad platforms (ip, user_agent, fbc, …). */
  ad?: Record<string, string>;
  /** False when the chat already held the click (the same link again): it is not sent onwards again. */
  fresh?: boolean;
}

/** An input as the decision sees it: Telegram updates already read into what the user did. */
export type InputEvent =
  | { kind: 'start'; user: StartedUser; click?: StartClick }
  | { kind: 'text'; text: string }
  | { kind: 'button'; data: string }
  | { kind: 'blocked' }
  | { kind: 'unblocked' }
  | { kind: 'other' }
  | { kind: 'move'; stepId?: string; stepKey?: string; status?: DialogStatus }
  | { kind: 'timer'; scheduledBy: number; stepId: string | null; stepKey: string | null }
  | { kind: 'conversion'; conversion: DialogConversionInput }
  | { kind: 'operator_message'; text: string };

/** The pending delay of a dialog. */
export interface DialogTimer {
  at: string;
  /** The input whose run set it: it fires only while that input's move is still the newest. */
  scheduledBy: number;
  stepId: string | null;
  stepKey: string | null;
}

/** A dialog as inputs are decided against. */
export interface DialogSnapshot {
  state: DialogState;
  username: string | null;
  name: string | null;
  startedAt: Date | null;
  timer: DialogTimer | null;
}

/** An effect as recorded on its input (dates as ISO text), to be carried out in order. */
export type RecordedEffect =
  | Extract<Effect, { type: 'send_message' }>
  | Extract<Effect, { type: 'send_webhook' }>
  /** A delay step: the timer the input sets on the dialog (its alarm is armed when carried out). */
  | { type: 'schedule'; stepId: string; timer: DialogTimer }
  /** An operator's message, rendered for Telegram's HTML parse mode; recorded as the operator's. */
  | { type: 'operator_message'; text: string };

/** What handling one input does to its dialog, decided before anything is carried out. */
export interface Decision {
  /** `ran`: the script ran; `recorded`: the dialog changed or nothing was to run; `superseded`: a newer move already won. */
  outcome: 'ran' | 'recorded' | 'superseded';
  /** Written with the input's order: a key a newer input wrote is left alone. */
  changes: DialogPatch;
  started?: StartedUser;
  /** Keep what the user wrote (the dialog is not running, or the reply came too late). */
  incoming?: { text: string | null };
  /** Set (a value), clear (null) or leave (undefined) the dialog's pending delay. */
  timer?: DialogTimer | null;
  /** Why flowpost set the dialog to manual by itself; null clears an older reason. */
  manualReason?: string | null;
  effects: RecordedEffect[];
  log: string[];
  /**
   * The order the decision's writes take when it is not the input's own: a /start that runs a move
   * accepted after it (the move waited for the user to start) writes with that move's order.
   */
  order?: number;
}
