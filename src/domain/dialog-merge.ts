import type { DialogPatch, DialogState } from './dialog.js';

/** An accepted update with its acceptance order (strictly increasing in the order the web tier accepted). */
export interface SequencedPatch {
  seq: number;
  patch: DialogPatch;
}

export interface MergeResult {
  state: DialogState;
  /** Whether anything was written. */
  changed: boolean;
  /** Whether the step was set by an update newer than the one that set it before. */
  stepMoved: boolean;
  /** Whether the status was set by a newer update. */
  statusChanged: boolean;
}

/**
 * Merges updates into a dialog so that, per key (each field, tracker field, tag, the status and the
 * step), the value written by the newest accepted update wins. Applying an update twice, or several
 * updates in any order, gives the same dialog as applying each once in acceptance order.
 */
export function mergeUpdates(current: DialogState, updates: readonly SequencedPatch[]): MergeResult {
  const state: DialogState = {
    status: current.status,
    stepId: current.stepId,
    fields: { ...current.fields },
    tracker: { ...current.tracker },
    tags: [...current.tags],
    seqs: { ...current.seqs },
    lastSeq: current.lastSeq,
  };
  const tags = new Set(state.tags);
  let changed = false;
  let stepMoved = false;
  let statusChanged = false;

  const claim = (slot: string, seq: number): boolean => {
    const previous = Object.hasOwn(state.seqs, slot) ? state.seqs[slot]! : 0;
    if (seq <= previous) return false;
    state.seqs[slot] = seq;
    changed = true;
    return true;
  };

  for (const { seq, patch } of updates) {
    if (patch.status !== undefined && claim('status', seq)) {
      statusChanged ||= state.status !== patch.status;
      state.status = patch.status;
    }
    if (patch.stepId !== undefined && claim('step', seq)) {
      state.stepId = patch.stepId;
      stepMoved = true;
    }
    for (const [key, value] of Object.entries(patch.fields ?? {})) {
      if (!claim(`f:${key}`, seq)) continue;
      if (value === null) delete state.fields[key];
      else state.fields[key] = value;
    }
    for (const [key, value] of Object.entries(patch.tracker ?? {})) {
      if (!claim(`t:${key}`, seq)) continue;
      if (value === null) delete state.tracker[key];
      else state.tracker[key] = value;
    }
    for (const tag of patch.removeTags ?? []) {
      if (claim(`g:${tag}`, seq)) tags.delete(tag);
    }
    for (const tag of patch.addTags ?? []) {
      if (claim(`g:${tag}`, seq)) tags.add(tag);
    }
    if (seq > state.lastSeq) state.lastSeq = seq;
  }
  state.tags = [...tags].sort();
  return { state, changed, stepMoved, statusChanged };
}

/**
 * Applies what the script did (step, status, fields, tags) onto the dialog as it is now. The
 * script acts after every update applied so far, so each key it writes is stamped with the newest
 * applied order: a later postback still wins over it, an earlier one arriving late does not.
 */
export function applyScriptChanges(current: DialogState, changes: DialogPatch): DialogState {
  const state: DialogState = {
    ...current,
    fields: { ...current.fields },
    tracker: { ...current.tracker },
    seqs: { ...current.seqs },
  };
  const stamp = (slot: string) => {
    state.seqs[slot] = Math.max(Object.hasOwn(state.seqs, slot) ? state.seqs[slot]! : 0, current.lastSeq);
  };
  if (changes.stepId !== undefined) {
    state.stepId = changes.stepId;
    stamp('step');
  }
  if (changes.status !== undefined) {
    state.status = changes.status;
    stamp('status');
  }
  for (const [key, value] of Object.entries(changes.fields ?? {})) {
    if (value === null) delete state.fields[key];
    else state.fields[key] = value;
    stamp(`f:${key}`);
  }
  const tags = new Set(current.tags);
  for (const tag of changes.removeTags ?? []) {
    tags.delete(tag);
    stamp(`g:${tag}`);
  }
  for (const tag of changes.addTags ?? []) {
    tags.add(tag);
    stamp(`g:${tag}`);
  }
  state.tags = [...tags].sort();
  return state;
}
