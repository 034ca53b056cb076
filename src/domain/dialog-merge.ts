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
 * Applies what the script did (step, status, fields, tags) onto the dialog as it is now. The run
 * saw the dialog as of update `baseSeq` (default: the newest applied now): each key it writes is
 * stamped with that order, so a later postback still wins over it, an earlier one arriving late
 * does not — and a key that a newer postback wrote while the run was going is left as it is.
 */
export function applyScriptChanges(current: DialogState, changes: DialogPatch, baseSeq = current.lastSeq): DialogState {
  const state: DialogState = {
    ...current,
    fields: { ...current.fields },
    tracker: { ...current.tracker },
    seqs: { ...current.seqs },
  };
  const claim = (slot: string): boolean => {
    const existing = Object.hasOwn(state.seqs, slot) ? state.seqs[slot]! : 0;
    if (existing > baseSeq) return false;
    state.seqs[slot] = Math.max(existing, baseSeq);
    return true;
  };
  if (changes.stepId !== undefined && claim('step')) state.stepId = changes.stepId;
  if (changes.status !== undefined && claim('status')) state.status = changes.status;
  for (const [key, value] of Object.entries(changes.fields ?? {})) {
    if (!claim(`f:${key}`)) continue;
    if (value === null) delete state.fields[key];
    else state.fields[key] = value;
  }
  for (const [key, value] of Object.entries(changes.tracker ?? {})) {
    if (!claim(`t:${key}`)) continue;
    if (value === null) delete state.tracker[key];
    else state.tracker[key] = value;
  }
  const tags = new Set(current.tags);
  for (const tag of changes.removeTags ?? []) if (claim(`g:${tag}`)) tags.delete(tag);
  for (const tag of changes.addTags ?? []) if (claim(`g:${tag}`)) tags.add(tag);
  state.tags = [...tags].sort();
  return state;
}
