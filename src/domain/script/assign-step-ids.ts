import type { ScriptDocument } from './types.js';

export interface StepId {
  key: string;
  id: string;
}

/**
 * Ids for the steps of an uploaded script, in step order: a key that was in the
 * previous upload keeps its id (`existing`: key → id), a new key gets `newId()`.
 */
export function assignStepIds(
  script: ScriptDocument,
  existing: ReadonlyMap<string, string>,
  newId: () => string,
): StepId[] {
  return script.steps.map(({ key }) => ({ key, id: existing.get(key) ?? newId() }));
}
