import { parseStatus, type DialogPatch, type DialogStatus, type FieldValue } from './dialog.js';
import { parseFieldValue, type FieldDefinition, type RawValue } from './field-types.js';
import { DomainError } from './errors.js';
import { keyProblem } from './keys.js';
import {
  MAX_DIALOG_FIELDS,
  MAX_DIALOG_TAGS,
  MAX_DIALOG_TRACKER_FIELDS,
  MAX_POSTBACK_PARAMS,
  MAX_POSTBACK_VALUE_BYTES as MAX_VALUE_BYTES,
} from './limits.js';
import { unstorableTextProblem } from './storable-text.js';

/** A Telegram chat id as text: a decimal integer, negative for groups, of at most 16 digits (readers also check it is a safe integer). */
export const CHAT_ID_PATTERN = /^-?\d{1,16}$/;

const MAX_TAG_LENGTH = 64;
const MAX_EVENT_ID_LENGTH = 255;

/** The parameters of one postback: query pairs, then the body (form pairs or a JSON object). */
export interface PostbackInput {
  query: ReadonlyArray<readonly [string, string]>;
  body: ReadonlyArray<readonly [string, string]> | Record<string, unknown> | null;
  idempotencyKey?: string | undefined;
}

/** A postback read and checked for shape, not yet against the bot. */
export interface PostbackRequest {
  /** The dialog, by chat id; null when the postback names it by `clickid` instead. */
  chatId: number | null;
  /** The dialog that claimed this click (API.md §5), when no chatId is given. */
  clickid?: string;
  stepRef?: string;
  status?: DialogStatus;
  fields: Map<string, RawValue>;
  tracker: Map<string, string | null>;
  addTags: string[];
  removeTags: string[];
  eventId?: string;
}

/** What the web tier knows of a bot to check a postback against it. */
export interface BotPostbackView {
  fields: ReadonlyMap<string, FieldDefinition>;
  /** A step's id and its key, each mapped to the step's id. */
  stepIdByRef: ReadonlyMap<string, string>;
  /** The key of each step id, carried with a move so that it survives a script upload. */
  stepKeyById?: ReadonlyMap<string, string>;
}

const ALIASES = [
  ['chatId', 'chat_id'],
  ['clickid', 'subid', 'click_id', 'cid'],
  ['stepId', 'step_id'],
] as const;
const TAG_PARAMS = new Set(['tags', 'addTags', 'removeTags']);
const RESERVED_NAMES = new Set(['fields', 'details', 'tracker']);
const BRACKET_NAME = /^(fields|details|tracker)\[([^\]]*)\]$/;

function byteLength(value: string): number {
  return value.length * 3 <= MAX_VALUE_BYTES ? value.length : Buffer.byteLength(value, 'utf8');
}

function checkValue(name: string, value: RawValue): void {
  const text = Array.isArray(value) ? value.join(',') : typeof value === 'string' ? value : '';
  if (byteLength(text) > MAX_VALUE_BYTES) {
    throw new DomainError('too_large', 'value_too_large', `${truncate(name)} is larger than ${MAX_VALUE_BYTES} bytes`, {
      param: truncate(name),
    });
  }
  // Postgres stores neither U+0000 nor an unpaired surrogate: such a value is refused here, not lost in the worker.
  const problem = unstorableTextProblem(text);
  if (problem !== null) {
    const code = text.includes('\u0000') ? 'invalid_value' : 'invalid_encoding';
    throw new DomainError('invalid', code, `${truncate(name)} ${problem}`, { param: truncate(name) });
  }
}

/** How many parameters a postback carries: its query pairs and body pairs, or each JSON key (a `fields`/`details`/`tracker` object's keys each). */
function paramCount(input: Pick<PostbackInput, 'query' | 'body'>): number {
  let count = input.query.length;
  if (input.body === null) return count;
  if (Array.isArray(input.body)) return count + input.body.length;
  for (const [name, value] of Object.entries(input.body)) {
    const nested = RESERVED_NAMES.has(name) && value !== null && typeof value === 'object' && !Array.isArray(value);
    count += nested ? Math.max(1, Object.keys(value).length) : 1;
  }
  return count;
}

/** Refuses (413, naming the limit) a postback carrying more than MAX_POSTBACK_PARAMS parameters. */
function refuseTooManyParams(input: Pick<PostbackInput, 'query' | 'body'>): void {
  const count = paramCount(input);
  if (count > MAX_POSTBACK_PARAMS) {
    throw new DomainError(
      'too_large',
      'too_many_params',
      `the request has ${count} parameters; a postback carries at most ${MAX_POSTBACK_PARAMS}`,
      { details: { limit: MAX_POSTBACK_PARAMS } },
    );
  }
}

/** Refuses (422, naming the limit) a request that alone sets more keys of one kind than a dialog holds. */
function refuseOverDialogCap(what: string, param: string, count: number, limit: number): void {
  if (count > limit) {
    throw new DomainError(
      'unprocessable',
      `too_many_${what.replace(/ /g, '_')}`,
      `the request names ${count} ${what}; a dialog holds at most ${limit} ${what}`,
      { param, details: { limit } },
    );
  }
}

function toRawValue(name: string, value: unknown): RawValue {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') {
    if (!Number.isFinite(value))
      throw new DomainError('invalid', 'invalid_value', `${name} must be a finite number`, { param: name });
    return value;
  }
  if (Array.isArray(value) && value.every((item) => typeof item === 'string')) return value;
  throw new DomainError(
    'invalid',
    'invalid_value',
    `${name} must be a string, number, boolean, null or an array of strings`,
    { param: name },
  );
}

/** Flattens a JSON body into parameter names as they would arrive in a query string. */
function flattenJson(body: Record<string, unknown>): Map<string, RawValue> {
  const out = new Map<string, RawValue>();
  for (const name of Object.keys(body)) {
    const value = body[name];
    if (name === 'fields' || name === 'details' || name === 'tracker') {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        throw new DomainError('invalid', 'invalid_value', `${name} must be an object of key → value`, { param: name });
      }
      for (const key of Object.keys(value)) {
        const param = `${name}.${key}`;
        checkKey(key, param);
        out.set(param, toRawValue(param, (value as Record<string, unknown>)[key]));
      }
    } else if (TAG_PARAMS.has(name)) {
      const raw = toRawValue(name, value);
      out.set(name, Array.isArray(raw) ? raw.join(',') : raw);
    } else {
      checkKey(splitName(name).key, name); // a refused key (`{"__proto__":{…}}`) is named as such, whatever its value
      out.set(name, toRawValue(name, value));
    }
  }
  return out;
}

/** Pairs into a map: a repeated tag parameter accumulates, any other repeated name keeps its last value. */
function collectPairs(pairs: ReadonlyArray<readonly [string, string]>): Map<string, RawValue> {
  const out = new Map<string, RawValue>();
  for (const [name, value] of pairs) {
    const previous = out.get(name);
    out.set(
      name,
      TAG_PARAMS.has(name) && typeof previous === 'string' && previous !== '' ? `${previous},${value}` : value,
    );
  }
  return out;
}

/** The prefix and key a parameter name sets: `fields.KEY`, `fields[KEY]` (also details, tracker) or a bare KEY. */
function splitName(name: string): { prefix: string | undefined; key: string } {
  const bracket = BRACKET_NAME.exec(name);
  const dot = /^(fields|details|tracker)\.(.*)$/s.exec(name);
  return { prefix: bracket?.[1] ?? dot?.[1], key: bracket?.[2] ?? dot?.[2] ?? name };
}

function checkKey(key: string, param: string): void {
  const problem = keyProblem(key);
  if (problem)
    throw new DomainError('invalid', 'invalid_key', `${truncate(param)}: key ${problem}`, { param: truncate(param) });
}

function truncate(text: string): string {
  return text.length > 100 ? `${text.slice(0, 100)}…` : text;
}

const CLICK_ID = /^[A-Za-z0-9_.-]{1,100}$/;

function parseClickId(value: RawValue): string {
  const text = typeof value === 'string' ? value.trim() : typeof value === 'number' ? String(value) : '';
  if (!CLICK_ID.test(text)) {
    throw new DomainError(
      'invalid',
      'invalid_clickid',
      'clickid must be 1-100 characters of A-Z, a-z, 0-9, "_", "." or "-"',
      {
        param: 'clickid',
      },
    );
  }
  return text;
}

function parseChatId(value: RawValue | undefined): number {
  if (value === undefined || value === null || value === '') {
    throw new DomainError('invalid', 'missing_chat_id', 'chatId (or clickid) is required', { param: 'chatId' });
  }
  const text = typeof value === 'number' ? String(value) : typeof value === 'string' ? value.trim() : '';
  const chatId = CHAT_ID_PATTERN.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(chatId) || chatId === 0) {
    throw new DomainError('invalid', 'invalid_chat_id', 'chatId must be a non-zero integer with |chatId| ≤ 2^53−1', {
      param: 'chatId',
    });
  }
  return chatId;
}

function parseTags(name: string, value: RawValue): string[] {
  if (typeof value !== 'string')
    throw new DomainError('invalid', 'invalid_tag', `${name} must be comma-separated tags`, { param: name });
  const tags = value
    .split(',')
    .map((tag) => tag.trim())
    .filter((tag) => tag !== '');
  for (const tag of tags) {
    // eslint-disable-next-line no-control-regex
    if (tag.length > MAX_TAG_LENGTH || /[\u0000-\u001f\u007f]/.test(tag)) {
      throw new DomainError(
        'invalid',
        'invalid_tag',
        `${name}: a tag is at most ${MAX_TAG_LENGTH} printable characters`,
        { param: name },
      );
    }
  }
  return [...new Set(tags)];
}

function asString(name: string, value: RawValue): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  throw new DomainError('invalid', 'invalid_value', `${name} must be a string`, { param: name });
}

/** Reads a postback's parameters (every form and alias of the contract) into a request. Throws DomainError. */
export function parsePostback(input: PostbackInput): PostbackRequest {
  refuseTooManyParams(input);
  const params = collectPairs(input.query);
  const body =
    input.body === null
      ? null
      : Array.isArray(input.body)
        ? collectPairs(input.body)
        : flattenJson(input.body as Record<string, unknown>);
  // A body value wins over the query's, an alias included (body `chat_id` beats query `chatId`).
  for (const names of ALIASES) {
    if (names.some((name) => body?.has(name))) names.forEach((name) => params.delete(name));
  }
  for (const [name, value] of body ?? []) params.set(name, value);

  const request: PostbackRequest = { chatId: 0, fields: new Map(), tracker: new Map(), addTags: [], removeTags: [] };
  let chatId: RawValue | undefined;
  let chatIdAlias: RawValue | undefined;
  let clickid: RawValue | undefined;
  let stepAlias: string | undefined;

  for (const [name, value] of params) {
    checkValue(name, value);
    switch (name) {
      case 'chatId':
        chatId = value;
        continue;
      case 'chat_id':
        chatIdAlias = value;
        continue;
      case 'clickid':
      case 'subid':
      case 'click_id':
      case 'cid':
        clickid ??= value;
        continue;
      case 'stepId':
        request.stepRef = asString(name, value).trim();
        continue;
      case 'step_id':
        stepAlias = asString(name, value).trim();
        continue;
      case 'status': {
        const status = typeof value === 'string' ? parseStatus(value) : null;
        if (!status)
          throw new DomainError('invalid', 'invalid_status', 'status must be auto, manual or blocked', {
            param: 'status',
          });
        request.status = status;
        continue;
      }
      case 'tags':
      case 'addTags':
        request.addTags.push(...parseTags(name, value));
        continue;
      case 'removeTags':
        request.removeTags.push(...parseTags(name, value));
        continue;
      case 'eventId':
        request.eventId = asString(name, value);
        continue;
    }
    const { prefix, key } = splitName(name);
    if (!prefix && RESERVED_NAMES.has(name)) {
      throw new DomainError('invalid', 'invalid_param', `${name} needs a key: ${name}.KEY or ${name}[KEY]`, {
        param: name,
      });
    }
    checkKey(key, name);
    if (prefix === 'tracker') {
      request.tracker.set(key, value === null ? null : asString(name, value));
    } else {
      request.fields.set(key, value);
    }
  }

  request.addTags = [...new Set(request.addTags)];
  request.removeTags = [...new Set(request.removeTags)];
  refuseOverDialogCap('fields', 'fields', request.fields.size, MAX_DIALOG_FIELDS);
  refuseOverDialogCap('tracker fields', 'tracker', request.tracker.size, MAX_DIALOG_TRACKER_FIELDS);
  refuseOverDialogCap('tags', 'tags', request.addTags.length, MAX_DIALOG_TAGS);
  refuseOverDialogCap('tags', 'removeTags', request.removeTags.length, MAX_DIALOG_TAGS);

  const chat = chatId ?? chatIdAlias;
  if (
    clickid !== undefined &&
    clickid !== null &&
    clickid !== '' &&
    (chat === undefined || chat === null || chat === '')
  ) {
    request.chatId = null;
    request.clickid = parseClickId(clickid);
  } else {
    request.chatId = parseChatId(chat);
  }
  if (request.stepRef === undefined && stepAlias !== undefined) request.stepRef = stepAlias;
  if (request.stepRef === '')
    throw new DomainError('invalid', 'invalid_step_id', 'stepId must not be empty', { param: 'stepId' });

  const eventId = request.eventId ?? input.idempotencyKey;
  if (eventId !== undefined) {
    const trimmed = eventId.trim();
    if (trimmed === '' || trimmed.length > MAX_EVENT_ID_LENGTH) {
      const param = request.eventId !== undefined ? 'eventId' : 'Idempotency-Key';
      throw new DomainError('invalid', 'invalid_event_id', `${param} must be 1-${MAX_EVENT_ID_LENGTH} characters`, {
        param,
      });
    }
    request.eventId = trimmed;
  }
  return request;
}

/** Checks a request against the bot: the step must exist, typed fields must parse. Throws DomainError (unprocessable). */
export function resolvePostback(request: PostbackRequest, bot: BotPostbackView): DialogPatch {
  const patch: DialogPatch = {};
  if (request.status) patch.status = request.status;
  if (request.stepRef !== undefined) {
    const stepId = bot.stepIdByRef.get(request.stepRef);
    if (!stepId)
      throw new DomainError('unprocessable', 'unknown_step', `no step with id or key "${truncate(request.stepRef)}"`, {
        param: 'stepId',
      });
    patch.stepId = stepId;
    const stepKey = bot.stepKeyById?.get(stepId);
    if (stepKey !== undefined) patch.stepKey = stepKey;
  }
  if (request.fields.size > 0) {
    const fields: Record<string, FieldValue | null> = {};
    for (const [key, raw] of request.fields) {
      const parsed = parseFieldValue(bot.fields.get(key), raw);
      if (!parsed.ok)
        throw new DomainError('unprocessable', 'invalid_field_value', `fields.${key} ${parsed.reason}`, {
          param: `fields.${key}`,
        });
      fields[key] = parsed.value;
    }
    patch.fields = fields;
  }
  if (request.tracker.size > 0) patch.tracker = Object.fromEntries(request.tracker);
  if (request.addTags.length > 0) patch.addTags = request.addTags;
  if (request.removeTags.length > 0) patch.removeTags = request.removeTags;
  return patch;
}
