import { describe, expect, it } from 'vitest';
import { emptyDialogState } from '../../src/domain/dialog.js';
import { applyScriptChanges, mergeUpdates } from '../../src/domain/dialog-merge.js';

describe('applyScriptChanges', () => {
  it('keeps what a newer postback wrote while the script ran, and writes the rest', () => {
    // The run saw the dialog as of update 10; update 11 then moved it to P and set the balance.
    const seen = mergeUpdates(emptyDialogState(), [
      { seq: 10, patch: { stepId: 'A', fields: { userBalance: 1 } } },
    ]).state;
    const now = mergeUpdates(seen, [{ seq: 11, patch: { stepId: 'P', fields: { userBalance: 2 } } }]).state;
    const saved = applyScriptChanges(
      now,
      { stepId: 'Q', fields: { userBalance: 3, email: 'a@b.example' }, addTags: ['vip'] },
      seen.lastSeq,
    );
    expect(saved.stepId).toBe('P');
    expect(saved.fields).toEqual({ userBalance: 2, email: 'a@b.example' });
    expect(saved.tags).toEqual(['vip']);
  });

  it('stamps what it writes so that a later postback still wins and an older one arriving late does not', () => {
    const base = mergeUpdates(emptyDialogState(), [{ seq: 5, patch: { fields: { x: 'postback' } } }]).state;
    const saved = applyScriptChanges(base, { fields: { x: 'script' } });
    expect(saved.fields.x).toBe('script');
    expect(mergeUpdates(saved, [{ seq: 4, patch: { fields: { x: 'late' } } }]).state.fields.x).toBe('script');
    expect(mergeUpdates(saved, [{ seq: 6, patch: { fields: { x: 'newer' } } }]).state.fields.x).toBe('newer');
  });
});

describe('mergeUpdates', () => {
  it('ends at the newest value per key whatever the order, and applying twice changes nothing', () => {
    const updates = [
      { seq: 1, patch: { fields: { b: 1 }, stepId: 's1', addTags: ['t'] } },
      { seq: 2, patch: { fields: { b: 2 }, removeTags: ['t'] } },
      { seq: 3, patch: { stepId: 's3', status: 'manual' as const } },
    ];
    const inOrder = mergeUpdates(emptyDialogState(), updates).state;
    const reversed = mergeUpdates(emptyDialogState(), [...updates].reverse()).state;
    expect(reversed).toEqual(inOrder);
    expect(inOrder).toMatchObject({ stepId: 's3', status: 'manual', fields: { b: 2 }, tags: [] });
    expect(mergeUpdates(inOrder, updates).changed).toBe(false);
  });
});
