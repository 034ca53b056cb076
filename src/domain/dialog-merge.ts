import type { DialogPatch, DialogState } from './dialog.js';
import { MAX_DIALOG_FIELDS, MAX_DIALOG_TAGS, MAX_DIALOG_TRACKER_FIELDS } from './limits.js';

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
  /** Keys not added because the dialog holds as many of their kind as it may (see limits.ts); empty lists when none. */
  dropped: DroppedKeys;
}

/** New keys an update could not add to a dialog already at its limit for that kind. */
export interface DroppedKeys {
  fields: string[];
  tracker: string[];
  tags: string[];
}

export function droppedAny(dropped: DroppedKeys): boolean {
  return dropped.fields.length + dropped.tracker.length + dropped.tags.length > 0;
}

/**
 * A dialog's fields (or tracker fields) with their count kept, so each key costs O(1). A key it
 * already has may always change; only a new key past the limit is refused (and takes no order
 * slot, so it can be added later once the dialog has room).
 */
class BoundedRecord<V> {
  private count: number;

  constructor(
    private readonly record: Record<string, V>,
    private readonly limit: number,
  ) {
    this.count = Object.keys(record).length;
  }

  hasRoomFor(key: string): boolean {
    return Object.hasOwn(this.record, key) || this.count < this.limit;
  }

  /** Sets a key, or removes it when `value` is null. */
  set(key: string, value: V | null): void {
    const has = Object.hasOwn(this.record, key);
    if (value === null) {
      if (has) this.count -= 1;
      delete this.record[key];
      return;
    }
    if (!has) this.count += 1;
    this.record[key] = value;
  }
}

function hasRoomForTag(tags: ReadonlySet<string>, tag: string): boolean {
  return tags.has(tag) || tags.size < MAX_DIALOG_TAGS;
}

/**
 * Merges updates into a dialog so that, per key (each field, tracker field, tag, the status and the
 * step), the value written by the newest accepted update wins. Applying an update twice, or several
 * updates in any order, gives the same dialog as applying each once in acceptance order — except
 * at a limit: a dialog holding MAX_DIALOG_FIELDS fields (tracker fields, tags) takes no new one;
 * such keys are left out and reported in `dropped`, and the rest of the update applies.
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
  const fields = new BoundedRecord(state.fields, MAX_DIALOG_FIELDS);
  const tracker = new BoundedRecord(state.tracker, MAX_DIALOG_TRACKER_FIELDS);
  const dropped: DroppedKeys = { fields: [], tracker: [], tags: [] };
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
      if (value !== null && !fields.hasRoomFor(key)) {
        dropped.fields.push(key);
        continue;
      }
      if (claim(`f:${key}`, seq)) fields.set(key, value);
    }
    for (const [key, value] of Object.entries(patch.tracker ?? {})) {
      if (value !== null && !tracker.hasRoomFor(key)) {
        dropped.tracker.push(key);
        continue;
      }
      if (claim(`t:${key}`, seq)) tracker.set(key, value);
    }
    for (const tag of patch.removeTags ?? []) {
      if (claim(`g:${tag}`, seq)) tags.delete(tag);
    }
    for (const tag of patch.addTags ?? []) {
      if (!hasRoomForTag(tags, tag)) {
        dropped.tags.push(tag);
        continue;
      }
      if (claim(`g:${tag}`, seq)) tags.add(tag);
    }
    if (seq > state.lastSeq) state.lastSeq = seq;
  }
  state.tags = [...tags].sort();
  return { state, changed, stepMoved, statusChanged, dropped };
}

/**
 * Applies what the script did (step, status, fields, tags) onto the dialog as it is now; a new key
 * past the dialog's limit for its kind (limits.ts) is left out, as in `mergeUpdates`. The run
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
  const fields = new BoundedRecord(state.fields, MAX_DIALOG_FIELDS);
  const tracker = new BoundedRecord(state.tracker, MAX_DIALOG_TRACKER_FIELDS);
  for (const [key, value] of Object.entries(changes.fields ?? {})) {
    if ((value === null || fields.hasRoomFor(key)) && claim(`f:${key}`)) fields.set(key, value);
  }
  for (const [key, value] of Object.entries(changes.tracker ?? {})) {
    if ((value === null || tracker.hasRoomFor(key)) && claim(`t:${key}`)) tracker.set(key, value);
  }
  const tags = new Set(current.tags);
  for (const tag of changes.removeTags ?? []) if (claim(`g:${tag}`)) tags.delete(tag);
  for (const tag of changes.addTags ?? []) {
    if (hasRoomForTag(tags, tag) && claim(`g:${tag}`)) tags.add(tag);
  }
  state.tags = [...tags].sort();
  return state;
}
