/** Lookup of a script's steps by id and by key. */
import type { EngineScript, EngineStep } from './types.js';

export class ScriptIndex {
  private readonly ids = new Map<string, EngineStep>();
  private readonly keys = new Map<string, EngineStep>();

  constructor(readonly script: EngineScript) {
    for (const stored of script.steps) {
      if (!this.ids.has(stored.id)) this.ids.set(stored.id, stored);
      if (!this.keys.has(stored.step.key)) this.keys.set(stored.step.key, stored);
    }
  }

  byId(id: string): EngineStep | undefined {
    return this.ids.get(id);
  }

  byKey(key: string): EngineStep | undefined {
    return this.keys.get(key);
  }

  start(): EngineStep | undefined {
    return this.keys.get(this.script.startKey);
  }
}
