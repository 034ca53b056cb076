/**
 * Decides what one input does to its dialog. Pure: the caller records the decision, then carries
 * out its effects. This is the one home of the rules of the dialog's single order:
 * - per key, the newest accepted input wins: an input older than the move that set the current
 *   step (`seqs.step`) does not move the step again, and its run is skipped (superseded);
 * - a move runs its step when the dialog has started and is `auto` (else the step waits for /start);
 * - a delay fires only while the run that set it is still the newest move;
 * - a move or delay whose step no longer exists resolves by key, else the dialog turns manual.
 */
import type { DialogPatch, DialogStatus } from '../dialog.js';
import { parseButtonCallbackData, parseStepCallbackData } from '../engine/callback-data.js';
import { runEngine } from '../engine/run-engine.js';
import { ScriptIndex } from '../engine/script-index.js';
import { encodeText } from '../../templates/index.js';
import { destinationRequests, type Destination, type DestinationHappening } from '../tracker/destinations.js';
import type { EngineResult, EngineScript, EngineStep, Trigger } from '../engine/types.js';
import type {
  Decision,
  DialogConversionInput,
  DialogSnapshot,
  DialogTimer,
  InputEvent,
  RecordedEffect,
  StartClick,
} from './types.js';

export interface DecideInput {
  chatId: number;
  dialog: DialogSnapshot;
  /** The input's acceptance order. */
  seq: number;
  event: InputEvent;
  script: EngineScript | null;
  now: Date;
  timezone: string;
  random: () => number;
  /** The conversion being handled, for its run's templates (`{{conversion.*}}`). */
  conversion?: Record<string, string | null>;
  /** The bot's destinations: a claimed click or a conversion is sent onwards to those that hear it. */
  destinations?: readonly Destination[];
}

/** Adds the Send Webhook requests of the destinations that hear `happening` to the decision. */
function sendOnwards(input: DecideInput, decision: Decision, happening: DestinationHappening): Decision {
  if (!input.destinations?.length) return decision;
  const { dialog } = input;
  const tracker = { ...dialog.state.tracker };
  for (const [key, value] of Object.entries(decision.changes.tracker ?? {})) {
    if (value === null) delete tracker[key];
    else tracker[key] = value;
  }
  const requests = destinationRequests(input.destinations, happening, {
    chatId: input.chatId,
    username: decision.started?.username ?? dialog.username,
    name: decision.started?.name ?? dialog.name,
    createdAt: dialog.startedAt ?? (decision.started ? input.now : null),
    stepId: decision.changes.stepId ?? dialog.state.stepId,
    status: decision.changes.status ?? dialog.state.status,
    fields: { ...dialog.state.fields, ...decision.changes.fields },
    tracker,
  });
  if (requests.length === 0) return decision;
  const effects: RecordedEffect[] = requests.map((request) => ({
    type: 'send_webhook',
    // The delivery names the destination that made it where a script's names its step.
    stepId: request.destinationId,
    method: request.method,
    url: request.url,
    headers: request.headers,
    body: request.body,
  }));
  return {
    ...decision,
    effects: [...decision.effects, ...effects],
    log: [...decision.log, `sent onwards to ${requests.length} destination(s)`],
  };
}

function stepSeq(dialog: DialogSnapshot): number {
  return dialog.state.seqs.step ?? 0;
}

function statusSeq(dialog: DialogSnapshot): number {
  return dialog.state.seqs.status ?? 0;
}

/** The step with this id, or else the step now keyed `key` (a script upload gave it a new id). */
function findStep(
  script: EngineScript,
  id: string | null | undefined,
  key: string | null | undefined,
): EngineStep | undefined {
  const index = new ScriptIndex(script);
  return (id ? index.byId(id) : undefined) ?? (key ? index.byKey(key) : undefined);
}

function recorded(changes: DialogPatch = {}, extra: Partial<Decision> = {}): Decision {
  return { outcome: 'recorded', changes, effects: [], log: [], ...extra };
}

function superseded(why: string, extra: Partial<Decision> = {}): Decision {
  return { outcome: 'superseded', changes: {}, effects: [], log: [why], ...extra };
}

/** The engine's effects as recorded; a delay becomes the timer this input sets on the dialog. */
function recordEffects(input: RunContext, result: EngineResult): RecordedEffect[] {
  return result.effects.map((effect) => {
    if (effect.type !== 'schedule') return effect;
    const stepKey = effect.nextStepId ? (findStep(input.script, effect.nextStepId, null)?.step.key ?? null) : null;
    const timer: DialogTimer = {
      at: effect.runAt.toISOString(),
      scheduledBy: input.seq,
      stepId: effect.nextStepId,
      stepKey,
    };
    return { type: 'schedule', stepId: effect.stepId, timer };
  });
}

interface RunContext extends DecideInput {
  script: EngineScript;
}

/** Runs the engine for a trigger over the dialog (with `overrides` already applied by this input). */
function run(
  input: RunContext,
  trigger: Trigger,
  overrides: { status?: DialogStatus; stepId?: string | null },
  base: Decision,
): Decision {
  const { dialog } = input;
  const startStepId = overrides.stepId === undefined ? dialog.state.stepId : overrides.stepId;
  const result = runEngine({
    script: input.script,
    dialog: {
      chatId: input.chatId,
      username: base.started?.username ?? dialog.username,
      name: base.started?.name ?? dialog.name,
      createdAt: dialog.startedAt ?? (base.started ? input.now : null),
      status: overrides.status ?? dialog.state.status,
      stepId: startStepId,
      fields: dialog.state.fields,
      tracker: dialog.state.tracker,
      tags: dialog.state.tags,
    },
    trigger,
    now: input.now,
    timezone: input.timezone,
    random: input.random,
    ...(input.conversion ? { conversion: input.conversion } : {}),
  });
  const effects = recordEffects(input, result);
  const changes: DialogPatch = { ...base.changes, ...result.changes };
  const decision: Decision = { ...base, changes, effects, log: [...base.log, ...result.log] };
  if (result.stop === 'ignored' && result.effects.length === 0) return { ...decision, outcome: base.outcome };
  decision.outcome = 'ran';
  // A run claims the step with its input's order even when it ends where it began (a loop back to a
  // delay): the delay it set belongs to this input, and only a newer move supersedes it.
  if (changes.stepId === undefined) changes.stepId = startStepId;
  // The pending delay follows the run: the one it set, or none once the run moved on.
  let timer: DialogTimer | undefined;
  for (const effect of effects) if (effect.type === 'schedule') timer = effect.timer;
  if (timer) decision.timer = timer;
  else if (input.dialog.timer) decision.timer = null;
  if (decision.manualReason === undefined && input.dialog.state.status !== 'auto') decision.manualReason = null;
  return decision;
}

function decideMove(input: DecideInput, event: Extract<InputEvent, { kind: 'move' }>): Decision {
  const { dialog, seq } = input;
  const changes: DialogPatch = {};
  const log: string[] = [];
  let status = dialog.state.status;
  if (event.status !== undefined && seq > statusSeq(dialog)) {
    changes.status = event.status;
    status = event.status;
  }
  const base: Decision = recorded(changes, { log });
  if (event.status !== undefined && event.status !== 'manual') base.manualReason = null;
  if (event.stepId === undefined && event.stepKey === undefined) return base;
  if (seq <= stepSeq(dialog)) {
    log.push(`move superseded by the newer move ${stepSeq(dialog)}`);
    return { ...base, outcome: changes.status === undefined ? 'superseded' : 'recorded' };
  }
  const script = input.script;
  const target = script ? findStep(script, event.stepId, event.stepKey) : undefined;
  if (!script || !target) {
    if (!script) {
      // No script yet: the step is kept as given, and runs once there is one and the user starts.
      if (event.stepId) changes.stepId = event.stepId;
      return base;
    }
    changes.status = 'manual';
    return {
      ...base,
      manualReason: `the step "${event.stepKey ?? event.stepId}" a postback moved the dialog to no longer exists`,
      log: [...log, 'move to a step that no longer exists; dialog set to manual'],
    };
  }
  changes.stepId = target.id;
  if (!dialog.startedAt || status !== 'auto') return { ...base, timer: dialog.timer ? null : undefined }; // runs on /start or release
  return run({ ...input, script }, { kind: 'step', stepId: target.id }, { status, stepId: target.id }, base);
}

function decideTimer(input: DecideInput, event: Extract<InputEvent, { kind: 'timer' }>): Decision {
  const { dialog } = input;
  const ownTimer = dialog.timer?.scheduledBy === event.scheduledBy;
  const clear = ownTimer ? { timer: null } : {};
  if (stepSeq(dialog) !== event.scheduledBy) return superseded('delay superseded: the dialog moved on', clear);
  if (!ownTimer && dialog.timer) return superseded('delay superseded by a newer one', {});
  if (event.stepId === null && event.stepKey === null) return recorded({}, clear);
  if (!dialog.startedAt || dialog.state.status !== 'auto' || !input.script)
    return recorded({}, { ...clear, log: ['delay ended while the dialog is not running'] });
  const target = findStep(input.script, event.stepId, event.stepKey);
  if (!target) {
    return recorded(
      { status: 'manual' },
      {
        ...clear,
        manualReason: `the step "${event.stepKey ?? event.stepId}" a delay leads to no longer exists`,
        log: ['delay leads to a step that no longer exists; dialog set to manual'],
      },
    );
  }
  return run({ ...input, script: input.script }, { kind: 'step', stepId: target.id }, {}, recorded({}, clear));
}

function decideStart(input: DecideInput, event: Extract<InputEvent, { kind: 'start' }>): Decision {
  if (event.click) return decideClickStart(input, event, event.click);
  const { dialog, seq } = input;
  const changes: DialogPatch = {};
  // Starting again after blocking the bot unblocks the dialog; an operator's `manual` stays.
  let status = dialog.state.status;
  if (status === 'blocked' && seq > statusSeq(dialog)) {
    changes.status = 'auto';
    status = 'auto';
  }
  const base = recorded(changes, { started: event.user });
  if (!input.script) return base;
  if (!dialog.startedAt) {
    // The first /start runs the step a move set while the user had not started: if that move was
    // accepted after this /start, the run carries the move's order (the move runs now, once).
    const order = Math.max(seq, stepSeq(dialog));
    const decision = run({ ...input, seq: order, script: input.script }, { kind: 'start' }, { status }, base);
    return order === seq ? decision : { ...decision, order };
  }
  if (seq < stepSeq(dialog)) return { ...base, log: ['/start superseded by a newer move'] };
  const script = input.script;
  const start = new ScriptIndex(script).start();
  if (!start) return base;
  return run({ ...input, script }, { kind: 'step', stepId: start.id }, { status }, base);
}

/**
 * A /start through a campaign link: the click's tracker fields are the dialog's (written with this
 * input's order, so a newer postback's tracker value is kept) and the run sees them; a dialog with
 * no step yet begins at the campaign's start step, as does a returning user's run.
 */
function decideClickStart(
  input: DecideInput,
  event: Extract<InputEvent, { kind: 'start' }>,
  click: StartClick,
): Decision {
  const { dialog } = input;
  const tracker: Record<string, string> = { ...dialog.state.tracker };
  const written: Record<string, string> = {};
  for (const [key, value] of Object.entries(click.fields)) {
    if ((dialog.state.seqs[`t:${key}`] ?? 0) > input.seq) continue;
    tracker[key] = value;
    written[key] = value;
  }
  const withClick: DialogSnapshot = { ...dialog, state: { ...dialog.state, tracker } };
  // The campaign's start step is the script's start for this /start (a step a postback set before
  // the first /start still runs first, as it would from the script's own start).
  const campaignStart =
    input.script && click.startStepKey ? new ScriptIndex(input.script).byKey(click.startStepKey) : undefined;
  const script = campaignStart && input.script ? withStartKey(input.script, campaignStart.step.key) : input.script;
  const decision = decideStart({ ...input, dialog: withClick, script }, { kind: 'start', user: event.user });
  const withTracker = {
    ...decision,
    changes: { ...decision.changes, tracker: { ...decision.changes.tracker, ...written } },
  };
  if (click.fresh === false) return withTracker;
  return sendOnwards(input, withTracker, {
    kind: 'click.claimed',
    clickid: click.clickid,
    campaignId: click.campaignId ?? null,
    campaign: click.campaign ?? null,
    click: click.ad ?? {},
  });
}

/** The script with another start step (a returning user's campaign run begins there). */
function withStartKey(script: EngineScript, startKey: string): EngineScript {
  return { ...script, startKey };
}

/**
 * A conversion (API.md §5): the script's first `onConversion` rule matching its event and status
 * sets status, tags and fields with the conversion's order, and moves the dialog to its `next`
 * step, run at once when the dialog has started and is `auto` (else the step waits for /start).
 */
function decideConversion(input: DecideInput, conversion: DialogConversionInput): Decision {
  const { dialog, seq, script } = input;
  const rule = script?.onConversion?.find(
    (r) =>
      (r.event === undefined || r.event === conversion.event) &&
      (r.status === undefined || r.status === conversion.status),
  );
  if (!script || !rule) return recorded();
  const changes: DialogPatch = {};
  if (rule.setStatus !== undefined && seq > statusSeq(dialog)) changes.status = rule.setStatus;
  if (rule.addTags?.length) changes.addTags = [...rule.addTags];
  if (rule.setFields) changes.fields = { ...rule.setFields };
  const base = recorded(changes, { log: [`conversion ${conversion.event}/${conversion.status} matched a rule`] });
  if (rule.next === undefined) return base;
  const target = new ScriptIndex(script).byKey(rule.next);
  if (!target) return { ...base, log: [...base.log, `onConversion step "${rule.next}" no longer exists`] };
  if (seq < stepSeq(dialog)) return { ...base, log: [...base.log, 'conversion move superseded by a newer move'] };
  const status = changes.status ?? dialog.state.status;
  if (!dialog.startedAt || status !== 'auto') return { ...base, changes: { ...changes, stepId: target.id } };
  const tags = new Set(dialog.state.tags);
  for (const tag of rule.addTags ?? []) tags.add(tag);
  const withValues: DialogSnapshot = {
    ...dialog,
    state: { ...dialog.state, fields: { ...dialog.state.fields, ...rule.setFields }, tags: [...tags].sort() },
  };
  const { clickid, event, status: conversionStatus, payout, currency, tid } = conversion;
  return run(
    {
      ...input,
      dialog: withValues,
      script,
      conversion: { clickid, event, status: conversionStatus, payout, currency, tid: tid === '' ? null : tid },
    },
    { kind: 'step', stepId: target.id },
    { status },
    base,
  );
}

/** Decides what `input.event` does to the dialog. */
export function decideInput(input: DecideInput): Decision {
  const { dialog, event, seq } = input;
  const running = dialog.startedAt !== null && dialog.state.status === 'auto' && input.script !== null;
  switch (event.kind) {
    case 'move':
      return decideMove(input, event);
    case 'timer':
      return decideTimer(input, event);
    case 'start':
      return decideStart(input, event);
    case 'text':
      if (!running) return recorded({}, { incoming: { text: event.text } });
      if (seq < stepSeq(dialog))
        return superseded('reply superseded by a newer move', { incoming: { text: event.text } });
      return run({ ...input, script: input.script! }, { kind: 'text', text: event.text }, {}, recorded());
    case 'button': {
      const button = parseButtonCallbackData(event.data);
      const stepButton = button ? null : parseStepCallbackData(event.data);
      if (running && stepButton !== null) {
        // A broadcast's button: the press moves the dialog to its step, as a move of this order.
        // A step no longer in the script (or data no button of ours carries) does nothing.
        if (!findStep(input.script!, stepButton, null)) return recorded();
        return decideMove(input, { kind: 'move', stepId: stepButton });
      }
      if (!running || !button) return recorded();
      if (seq < stepSeq(dialog)) return superseded('button superseded by a newer move');
      return run(
        { ...input, script: input.script! },
        { kind: 'button', stepId: button.stepId, index: button.index },
        {},
        recorded(),
      );
    }
    case 'blocked':
      return seq > statusSeq(dialog) ? recorded({ status: 'blocked' }) : recorded();
    case 'unblocked':
      return recorded();
    case 'other':
      return recorded({}, dialog.state.status === 'manual' ? { incoming: { text: null } } : {});
    case 'operator_message':
      // Whatever the status: the operator's message moves nothing, and takes its place in the order.
      return recorded({}, { effects: [{ type: 'operator_message', text: encodeText('html', event.text) }] });
    case 'conversion': {
      const c = event.conversion;
      return sendOnwards(input, decideConversion(input, c), {
        kind: 'conversion',
        clickid: c.clickid,
        campaignId: c.campaignId ?? null,
        campaign: c.campaign ?? null,
        click: c.click ?? {},
        conversion: {
          status: c.status,
          payout: c.payout,
          currency: c.currency,
          event: c.event,
          tid: c.tid,
          eventKey: c.eventKey ?? `${c.clickid}-${c.event}-${c.tid}-${c.status}`,
          eventTime: c.eventTime ?? Math.floor(input.now.getTime() / 1000),
        },
      });
    }
  }
}
