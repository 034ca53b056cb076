/** The engine's working copy of a dialog, and its net difference from the original. */
import type { DialogStatus, FieldValue } from '../dialog.js';
import type { DialogChanges, EngineDialog } from './types.js';

/** Sets an own data property, even for a key such as "__proto__". */
function setOwn<T>(record: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(record, key, { value, enumerable: true, writable: true, configurable: true });
}

function sameValue(a: FieldValue | undefined, b: FieldValue | undefined): boolean {
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((item, i) => item === b[i]);
  return a === b;
}

export class WorkingDialog {
  status: DialogStatus;
  stepId: string | null;
  readonly fields: Record<string, FieldValue>;
  readonly tracker: Record<string, string>;
  tags: string[];

  constructor(private readonly original: EngineDialog) {
    this.status = original.status;
    this.stepId = original.stepId;
    this.fields = Object.fromEntries(
      Object.entries(original.fields).map(([k, v]) => [k, Array.isArray(v) ? [...v] : v]),
    );
    this.tracker = Object.fromEntries(Object.entries(original.tracker));
    this.tags = [...original.tags];
  }

  get chatId(): number {
    return this.original.chatId;
  }

  get username(): string | null {
    return this.original.username;
  }

  get name(): string | null {
    return this.original.name;
  }

  get createdAt(): Date | null {
    return this.original.createdAt;
  }

  setField(key: string, value: FieldValue): void {
    setOwn(this.fields, key, value);
  }

  addTag(tag: string): void {
    if (!this.tags.includes(tag)) this.tags.push(tag);
  }

  removeTag(tag: string): void {
    this.tags = this.tags.filter((existing) => existing !== tag);
  }

  /** What changed relative to the dialog the run started with; keys with no change are left out. */
  changes(): DialogChanges {
    const { original } = this;
    const changes: DialogChanges = {};
    if (this.stepId !== original.stepId) changes.stepId = this.stepId;
    if (this.status !== original.status) changes.status = this.status;

    const fields: Record<string, FieldValue | null> = {};
    for (const [key, value] of Object.entries(this.fields)) {
      const before = Object.hasOwn(original.fields, key) ? original.fields[key] : undefined;
      if (!sameValue(before, value)) setOwn(fields, key, value);
    }
    for (const key of Object.keys(original.fields)) {
      if (!Object.hasOwn(this.fields, key)) setOwn<FieldValue | null>(fields, key, null);
    }
    if (Object.keys(fields).length > 0) changes.fields = fields;

    const addTags = this.tags.filter((tag) => !original.tags.includes(tag));
    const removeTags = [...new Set(original.tags)].filter((tag) => !this.tags.includes(tag));
    if (addTags.length > 0) changes.addTags = addTags;
    if (removeTags.length > 0) changes.removeTags = removeTags;
    return changes;
  }
}
