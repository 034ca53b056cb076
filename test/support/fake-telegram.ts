import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A fake Telegram Bot API server for tests: `POST /bot<token>/<method>` as grammY calls it
 * (JSON, form or multipart bodies), on 127.0.0.1 and a random port. Point grammY at `apiRoot`
 * (or TELEGRAM_API_ROOT at it). Every call is recorded; `getUpdates` long-polls a queue the test
 * fills with `pushUpdate`; answers can be made to fail with `failNext`.
 *
 * `clientRoot(label)` is another root for the same server (`<apiRoot>/_<label>`) whose calls are
 * recorded with `client: label`, to tell apart processes that share a token.
 */

export interface FakeCall {
  token: string;
  method: string;
  params: Record<string, unknown>;
  /** Date.now() when the request arrived. */
  at: number;
  /** The label of the clientRoot used, or null for apiRoot. */
  client: string | null;
  /** HTTP status answered (200, or the error code); 0 while a long poll is still held. */
  status: number;
}

/** A Bot API error answer. */
export interface FakeApiError {
  error_code: number;
  description: string;
  parameters?: { retry_after?: number; migrate_to_chat_id?: number };
}

export interface FailOptions {
  /** How many calls fail (default 1). */
  times?: number;
  /** Only calls for this chat_id. */
  chatId?: number | string;
  /** Only calls with this token. */
  token?: string;
}

/** Custom answer for a method; return the `result`, or throw a FakeApiError-shaped object via `fakeApiError`. */
export type FakeHandler = (params: Record<string, unknown>, token: string) => unknown;

export interface FakeTelegram {
  /** `http://127.0.0.1:<port>` */
  apiRoot: string;
  /** `<apiRoot>/_<label>`: the same server, with calls recorded under `client: label`. */
  clientRoot(label: string): string;
  /** Every call so far, in arrival order (a live array). */
  calls: FakeCall[];
  callsOf(method: string, token?: string): FakeCall[];
  /**
   * Resolves with the first call (already made, or to come) of `method` that matches. The predicate
   * sees a call when it arrives (status 0) and again when it is answered.
   */
  waitForCall(method: string, predicate?: (call: FakeCall) => boolean, timeoutMs?: number): Promise<FakeCall>;
  /** Queues an update for a token's getUpdates; an `update_id` is given when absent. */
  pushUpdate(token: string, update: Record<string, unknown>): Record<string, unknown> & { update_id: number };
  /** Updates not yet confirmed by an offset. */
  pendingUpdates(token: string): Array<Record<string, unknown>>;
  /** The next `times` calls of `method` (optionally for one chat or token) answer `error`. */
  failNext(method: string, error: FakeApiError, options?: FailOptions): void;
  /** Every call with this token answers 401 Unauthorized. */
  rejectToken(token: string): void;
  acceptToken(token: string): void;
  /** Answers `method` with a handler (overrides the built-in answer). */
  handle(method: string, handler: FakeHandler): void;
  /** The webhook set for a token, if any. */
  webhookOf(token: string): { url: string; params: Record<string, unknown> } | null;
  /** Forgets the recorded calls and pending failures (updates and webhooks stay). */
  reset(): void;
  close(): Promise<void>;
}

/** Error answers Telegram gives, for failNext. */
export const TELEGRAM_ERRORS = {
  tooManyRequests: (retryAfter = 1): FakeApiError => ({
    error_code: 429,
    description: `Too Many Requests: retry after ${retryAfter}`,
    parameters: { retry_after: retryAfter },
  }),
  blocked: (): FakeApiError => ({ error_code: 403, description: 'Forbidden: bot was blocked by the user' }),
  deactivated: (): FakeApiError => ({ error_code: 403, description: 'Forbidden: user is deactivated' }),
  chatNotFound: (): FakeApiError => ({ error_code: 400, description: 'Bad Request: chat not found' }),
  serverError: (): FakeApiError => ({ error_code: 500, description: 'Internal Server Error' }),
  badGateway: (): FakeApiError => ({ error_code: 502, description: 'Bad Gateway' }),
  unauthorized: (): FakeApiError => ({ error_code: 401, description: 'Unauthorized' }),
};

/** Throw this from a handler to answer an error. */
class FakeApiErrorAnswer extends Error {
  constructor(readonly answer: FakeApiError) {
    super(answer.description);
  }
}

export function fakeApiError(answer: FakeApiError): FakeApiErrorAnswer {
  return new FakeApiErrorAnswer(answer);
}

/** Builders for the updates Telegram sends, to push with pushUpdate. */
export const fakeUpdates = {
  user(chatId: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      id: chatId,
      is_bot: false,
      first_name: 'Test',
      last_name: 'User',
      username: `user${Math.abs(chatId)}`,
      ...extra,
    };
  },
  chat(chatId: number): Record<string, unknown> {
    return chatId < 0
      ? { id: chatId, type: 'supergroup', title: `Group ${chatId}` }
      : { id: chatId, type: 'private', first_name: 'Test', last_name: 'User', username: `user${chatId}` };
  },
  message(chatId: number, fields: Record<string, unknown>, from?: Record<string, unknown>): Record<string, unknown> {
    return {
      message: {
        message_id: Math.floor(Math.random() * 1e6),
        date: Math.floor(Date.now() / 1000),
        chat: fakeUpdates.chat(chatId),
        from: from ?? fakeUpdates.user(chatId),
        ...fields,
      },
    };
  },
  text(chatId: number, text: string, from?: Record<string, unknown>): Record<string, unknown> {
    return fakeUpdates.message(chatId, { text }, from);
  },
  start(chatId: number, payload?: string, from?: Record<string, unknown>): Record<string, unknown> {
    const text = payload === undefined ? '/start' : `/start ${payload}`;
    return fakeUpdates.message(chatId, { text, entities: [{ type: 'bot_command', offset: 0, length: 6 }] }, from);
  },
  photo(chatId: number): Record<string, unknown> {
    return fakeUpdates.message(chatId, { photo: [{ file_id: 'photo', file_unique_id: 'p', width: 1, height: 1 }] });
  },
  button(chatId: number, data: string, from?: Record<string, unknown>): Record<string, unknown> {
    return {
      callback_query: {
        id: String(Math.floor(Math.random() * 1e12)),
        from: from ?? fakeUpdates.user(chatId),
        chat_instance: '1',
        data,
        message: { message_id: 1, date: Math.floor(Date.now() / 1000), chat: fakeUpdates.chat(chatId), text: 'x' },
      },
    };
  },
  memberStatus(chatId: number, oldStatus: string, newStatus: string): Record<string, unknown> {
    const bot = { id: 1, is_bot: true, first_name: 'Bot', username: 'bot1' };
    return {
      my_chat_member: {
        chat: fakeUpdates.chat(chatId),
        from: fakeUpdates.user(chatId),
        date: Math.floor(Date.now() / 1000),
        old_chat_member: { status: oldStatus, user: bot },
        new_chat_member:
          newStatus === 'kicked' ? { status: newStatus, user: bot, until_date: 0 } : { status: newStatus, user: bot },
      },
    };
  },
  blocked(chatId: number): Record<string, unknown> {
    return fakeUpdates.memberStatus(chatId, 'member', 'kicked');
  },
  unblocked(chatId: number): Record<string, unknown> {
    return fakeUpdates.memberStatus(chatId, 'kicked', 'member');
  },
};

const TELEGRAM_LIMIT = 4096;
const SUPPORTED_TAGS = new Set([
  'b',
  'strong',
  'i',
  'em',
  'u',
  'ins',
  's',
  'strike',
  'del',
  'span',
  'tg-spoiler',
  'a',
  'tg-emoji',
  'code',
  'pre',
  'blockquote',
  'tg-time',
]);

/** Telegram's HTML mode, roughly: supported tags, properly nested; returns the plain text. */
function parseHtml(html: string): { text: string } | { error: string } {
  const stack: string[] = [];
  let text = '';
  let i = 0;
  while (i < html.length) {
    const ch = html[i]!;
    if (ch === '<') {
      const match = /^<(\/?)([A-Za-z][A-Za-z0-9-]*)((?:\s+(?:[^>"']|"[^"]*"|'[^']*')*)?)\s*>/.exec(html.slice(i));
      if (!match) return { error: `Can't parse entities: unexpected character '<' at byte offset ${i}` };
      const name = match[2]!.toLowerCase();
      if (!SUPPORTED_TAGS.has(name))
        return { error: `Can't parse entities: unsupported start tag "${name}" at byte offset ${i}` };
      if (match[1] === '/') {
        if (stack.pop() !== name)
          return { error: `Can't parse entities: can't find end tag corresponding to start tag "${name}"` };
      } else {
        stack.push(name);
      }
      i += match[0].length;
      continue;
    }
    if (ch === '&') {
      const match = /^&(lt|gt|amp|quot|#\d{1,7}|#x[0-9A-Fa-f]{1,6});/.exec(html.slice(i, i + 12));
      if (match) {
        const name = match[1]!;
        text +=
          name === 'lt'
            ? '<'
            : name === 'gt'
              ? '>'
              : name === 'amp'
                ? '&'
                : name === 'quot'
                  ? '"'
                  : String.fromCodePoint(
                      name.startsWith('#x') ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10),
                    );
        i += match[0].length;
        continue;
      }
    }
    text += ch;
    i++;
  }
  if (stack.length > 0)
    return {
      error: `Can't parse entities: can't find end tag corresponding to start tag "${stack[stack.length - 1]}"`,
    };
  return { text };
}

function parseValue(value: string): unknown {
  const trimmed = value.trim();
  if ((trimmed.startsWith('{') && trimmed.endsWith('}')) || (trimmed.startsWith('[') && trimmed.endsWith(']'))) {
    try {
      return JSON.parse(trimmed);
    } catch {
      return value;
    }
  }
  return value;
}

function parseMultipart(body: Buffer, contentType: string): Record<string, unknown> {
  const boundary = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(contentType);
  const params: Record<string, unknown> = {};
  if (!boundary) return params;
  const delimiter = `--${boundary[1] ?? boundary[2]}`;
  for (const section of body.toString('latin1').split(delimiter)) {
    const split = section.indexOf('\r\n\r\n');
    if (split < 0) continue;
    const head = section.slice(0, split);
    const name = /name="([^"]*)"/i.exec(head)?.[1];
    if (!name) continue;
    const raw = section.slice(split + 4).replace(/\r\n$/, '');
    const filename = /filename="([^"]*)"/i.exec(head)?.[1];
    params[name] =
      filename !== undefined ? { filename, size: raw.length } : parseValue(Buffer.from(raw, 'latin1').toString('utf8'));
  }
  return params;
}

function parseBody(body: Buffer, contentType: string, query: URLSearchParams): Record<string, unknown> {
  const params: Record<string, unknown> = {};
  for (const [key, value] of query) params[key] = parseValue(value);
  if (body.length === 0) return params;
  if (contentType.includes('application/json')) {
    const parsed: unknown = JSON.parse(body.toString('utf8'));
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) Object.assign(params, parsed);
  } else if (contentType.includes('multipart/form-data')) {
    Object.assign(params, parseMultipart(body, contentType));
  } else {
    for (const [key, value] of new URLSearchParams(body.toString('utf8'))) params[key] = parseValue(value);
  }
  return params;
}

interface FailRule {
  method: string;
  error: FakeApiError;
  remaining: number;
  chatId?: string;
  token?: string;
}

interface Poll {
  token: string;
  offset: number;
  limit: number;
  call: FakeCall;
  answer: (status: number, body: unknown) => void;
  timer: NodeJS.Timeout;
}

interface CallWaiter {
  method: string;
  predicate: (call: FakeCall) => boolean;
  resolve: (call: FakeCall) => void;
}

export async function startFakeTelegram(): Promise<FakeTelegram> {
  const calls: FakeCall[] = [];
  const waiters = new Set<CallWaiter>();
  const failures: FailRule[] = [];
  const rejected = new Set<string>();
  const handlers = new Map<string, FakeHandler>();
  const queues = new Map<string, Array<Record<string, unknown> & { update_id: number }>>();
  const nextUpdateId = new Map<string, number>();
  const webhooks = new Map<string, { url: string; params: Record<string, unknown> }>();
  const polls = new Set<Poll>();
  let messageId = 0;

  const queueOf = (token: string) => {
    let queue = queues.get(token);
    if (!queue) queues.set(token, (queue = []));
    return queue;
  };

  const botUser = (token: string) => {
    const id = Number(token.split(':')[0]);
    return {
      id,
      is_bot: true as const,
      first_name: `Bot ${id}`,
      username: `bot${id}`,
      can_join_groups: true,
      can_read_all_group_messages: false,
      supports_inline_queries: false,
      can_connect_to_business: false,
      has_main_web_app: false,
      has_topics_enabled: false,
      allows_users_to_create_topics: false,
      can_manage_bots: false,
      supports_join_request_queries: false,
    };
  };

  // Waiters are checked when a call arrives and again when it is answered (status set).
  const notify = (call: FakeCall) => {
    for (const waiter of waiters) {
      if (waiter.method === call.method && waiter.predicate(call)) {
        waiters.delete(waiter);
        waiter.resolve(call);
      }
    }
  };

  const record = (call: FakeCall) => {
    calls.push(call);
    notify(call);
  };

  const takeFailure = (method: string, token: string, params: Record<string, unknown>): FakeApiError | null => {
    const rule = failures.find(
      (r) =>
        r.remaining > 0 &&
        r.method === method &&
        (r.token === undefined || r.token === token) &&
        (r.chatId === undefined || String(params.chat_id) === r.chatId),
    );
    if (!rule) return null;
    rule.remaining--;
    if (rule.remaining === 0) failures.splice(failures.indexOf(rule), 1);
    return rule.error;
  };

  const confirm = (token: string, offset: number) => {
    const queue = queueOf(token);
    while (queue.length > 0 && queue[0]!.update_id < offset) queue.shift();
  };

  const answerPoll = (poll: Poll) => {
    polls.delete(poll);
    clearTimeout(poll.timer);
    const queue = queueOf(poll.token).filter((u) => u.update_id >= poll.offset);
    poll.answer(200, { ok: true, result: queue.slice(0, poll.limit) });
  };

  const builtIn = (method: string, token: string, params: Record<string, unknown>): unknown => {
    switch (method) {
      case 'getMe':
        return botUser(token);
      case 'sendMessage': {
        if (params.chat_id === undefined || params.chat_id === '')
          throw fakeApiError({ error_code: 400, description: 'Bad Request: chat_id is empty' });
        const raw = typeof params.text === 'string' ? params.text : '';
        let text = raw;
        if (params.parse_mode === 'HTML') {
          const parsed = parseHtml(raw);
          if ('error' in parsed) throw fakeApiError({ error_code: 400, description: `Bad Request: ${parsed.error}` });
          text = parsed.text;
        }
        if (text.trim() === '')
          throw fakeApiError({ error_code: 400, description: 'Bad Request: message text is empty' });
        if (text.length > TELEGRAM_LIMIT)
          throw fakeApiError({ error_code: 400, description: 'Bad Request: message is too long' });
        const markup = params.reply_markup as
          { inline_keyboard?: Array<Array<{ callback_data?: string }>> } | undefined;
        for (const row of markup?.inline_keyboard ?? []) {
          for (const button of row) {
            if (button.callback_data !== undefined && Buffer.byteLength(button.callback_data) > 64) {
              throw fakeApiError({ error_code: 400, description: 'Bad Request: BUTTON_DATA_INVALID' });
            }
          }
        }
        const chatId = Number(params.chat_id);
        return {
          message_id: ++messageId,
          date: Math.floor(Date.now() / 1000),
          chat:
            chatId < 0
              ? { id: chatId, type: 'supergroup', title: 'Group' }
              : { id: chatId, type: 'private', first_name: 'Test' },
          from: botUser(token),
          text,
          ...(markup ? { reply_markup: markup } : {}),
        };
      }
      case 'setWebhook':
        if (typeof params.url !== 'string' || params.url === '') webhooks.delete(token);
        else webhooks.set(token, { url: params.url, params });
        return true;
      case 'deleteWebhook':
        webhooks.delete(token);
        if (params.drop_pending_updates === true) queueOf(token).length = 0;
        return true;
      case 'getWebhookInfo':
        return {
          url: webhooks.get(token)?.url ?? '',
          has_custom_certificate: false,
          pending_update_count: queueOf(token).length,
        };
      case 'answerCallbackQuery':
      case 'setMyCommands':
      case 'deleteMyCommands':
      case 'sendChatAction':
        return true;
      default:
        throw fakeApiError({ error_code: 404, description: 'Not Found: method not found' });
    }
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const send = (status: number, body: unknown) => {
        if (res.writableEnded || res.destroyed) return;
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      const route = /^\/(?:_([A-Za-z0-9_-]+)\/)?bot([^/]+)\/([A-Za-z]+)$/.exec(url.pathname);
      if (!route) return send(404, { ok: false, error_code: 404, description: 'Not Found' });
      const client = route[1] ?? null;
      const token = decodeURIComponent(route[2]!);
      const method = route[3]!;
      let params: Record<string, unknown>;
      try {
        params = parseBody(Buffer.concat(chunks), String(req.headers['content-type'] ?? ''), url.searchParams);
      } catch {
        return send(400, { ok: false, error_code: 400, description: 'Bad Request: invalid JSON' });
      }
      const call: FakeCall = { token, method, params, at: Date.now(), client, status: 0 };
      record(call);
      const answer = (status: number, body: unknown) => {
        call.status = status;
        send(status, body);
        notify(call);
      };
      const fail = (error: FakeApiError) =>
        answer(error.error_code, {
          ok: false,
          error_code: error.error_code,
          description: error.description,
          ...(error.parameters ? { parameters: error.parameters } : {}),
        });

      if (rejected.has(token) || !/^\d+:.+$/.test(token)) return fail(TELEGRAM_ERRORS.unauthorized());
      const failure = takeFailure(method, token, params);
      if (failure) return fail(failure);

      const handler = handlers.get(method);
      if (handler) {
        try {
          return answer(200, { ok: true, result: handler(params, token) });
        } catch (error) {
          if (error instanceof FakeApiErrorAnswer) return fail(error.answer);
          return fail({ error_code: 500, description: `Internal Server Error: ${String(error)}` });
        }
      }

      if (method === 'getUpdates') {
        if (webhooks.has(token)) {
          return fail({
            error_code: 409,
            description:
              "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
          });
        }
        // As Telegram does: a newer getUpdates ends one still held for the same token.
        for (const held of [...polls]) {
          if (held.token !== token) continue;
          polls.delete(held);
          clearTimeout(held.timer);
          held.answer(409, {
            ok: false,
            error_code: 409,
            description:
              'Conflict: terminated by other getUpdates request; make sure that only one bot instance is running',
          });
        }
        const offset = Number(params.offset ?? 0) || 0;
        if (offset > 0) confirm(token, offset);
        const limit = Math.min(100, Math.max(1, Number(params.limit ?? 100) || 100));
        const timeout = Math.max(0, Number(params.timeout ?? 0) || 0);
        const poll: Poll = {
          token,
          offset,
          limit,
          call,
          answer,
          timer: setTimeout(() => answerPoll(poll), timeout * 1000),
        };
        if (queueOf(token).some((u) => u.update_id >= offset) || timeout === 0) return answerPoll(poll);
        polls.add(poll);
        // The client gave up (aborted): forget the poll so a later update is not "sent" to nobody.
        res.on('close', () => {
          if (polls.delete(poll)) clearTimeout(poll.timer);
        });
        return;
      }

      try {
        answer(200, { ok: true, result: builtIn(method, token, params) });
      } catch (error) {
        if (error instanceof FakeApiErrorAnswer) return fail(error.answer);
        fail({ error_code: 500, description: `Internal Server Error: ${String(error)}` });
      }
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const apiRoot = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    apiRoot,
    clientRoot: (label) => `${apiRoot}/_${label}`,
    calls,
    callsOf: (method, token) => calls.filter((c) => c.method === method && (token === undefined || c.token === token)),
    waitForCall: (method, predicate = () => true, timeoutMs = 5_000) => {
      const found = calls.find((c) => c.method === method && predicate(c));
      if (found) return Promise.resolve(found);
      return new Promise<FakeCall>((resolve, reject) => {
        const waiter: CallWaiter = {
          method,
          predicate,
          resolve: (call) => {
            clearTimeout(timer);
            resolve(call);
          },
        };
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`fake Telegram: no ${method} call within ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.add(waiter);
      });
    },
    pushUpdate: (token, update) => {
      const given = update.update_id;
      const id = typeof given === 'number' ? given : (nextUpdateId.get(token) ?? 1);
      nextUpdateId.set(token, Math.max(nextUpdateId.get(token) ?? 1, id + 1));
      const full = { ...update, update_id: id };
      queueOf(token).push(full);
      for (const poll of [...polls]) if (poll.token === token && id >= poll.offset) answerPoll(poll);
      return full;
    },
    pendingUpdates: (token) => [...queueOf(token)],
    failNext: (method, error, options = {}) => {
      failures.push({
        method,
        error,
        remaining: Math.max(1, options.times ?? 1),
        ...(options.chatId !== undefined ? { chatId: String(options.chatId) } : {}),
        ...(options.token !== undefined ? { token: options.token } : {}),
      });
    },
    rejectToken: (token) => {
      rejected.add(token);
    },
    acceptToken: (token) => {
      rejected.delete(token);
    },
    handle: (method, handler) => {
      handlers.set(method, handler);
    },
    webhookOf: (token) => webhooks.get(token) ?? null,
    reset: () => {
      calls.length = 0;
      failures.length = 0;
    },
    close: async () => {
      for (const poll of [...polls]) answerPoll(poll);
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
