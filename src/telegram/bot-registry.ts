import { Api, Bot, HttpError, type ApiClientOptions, type Transformer } from 'grammy';
import type { UserFromGetMe } from 'grammy/types';
import { sanitizeHttpError, toTelegramApiError } from './safe-errors.js';

/** Client options a caller may add; `apiRoot` is the registry's. */
export type BotClientOptions = Omit<ApiClientOptions, 'apiRoot'>;

export interface BotRegistryOptions {
  /** Bot API root, e.g. `https://api.telegram.org` or a fake server's `http://127.0.0.1:port`. */
  apiRoot: string;
  /** Most bots kept; the least recently used is dropped beyond it. Default 1000. */
  maxBots?: number;
  client?: BotClientOptions;
}

/** The AbortSignal type grammY's Node build declares (the abort-controller polyfill's). */
export type GrammySignal = NonNullable<Parameters<Api['getMe']>[0]>;

/**
 * A native AbortSignal as grammY's parameter type. grammY only calls addEventListener on it (and
 * checks that it has one), which the native signal has.
 */
export function grammySignal(signal: AbortSignal | undefined): GrammySignal | undefined {
  return signal as unknown as GrammySignal | undefined;
}

/** `https://api.telegram.org/` → `https://api.telegram.org` (grammY refuses a trailing slash). */
function normalizeApiRoot(apiRoot: string): string {
  return apiRoot.replace(/\/+$/, '');
}

/**
 * A grammY API transformer that strips the token from network errors: grammY's HttpError keeps
 * node-fetch's error, whose message and fields hold the request URL (token included), so logging
 * it would leak the token. Telegram's own error answers (GrammyError) hold no token.
 */
function tokenGuard(token: string): Transformer {
  return async (prev, method, payload, signal) => {
    try {
      return await prev(method, payload, signal);
    } catch (error) {
      if (error instanceof HttpError) throw sanitizeHttpError(error, token);
      throw toTelegramApiError(error, method, token);
    }
  };
}

/** A grammY Bot for one token, with `botInfo` given (no getMe per update) and the token guard on. */
export function createBot(token: string, botInfo: UserFromGetMe, apiRoot: string, client: BotClientOptions = {}): Bot {
  const bot = new Bot(token, { botInfo, client: { ...client, apiRoot: normalizeApiRoot(apiRoot) } });
  bot.api.config.use(tokenGuard(token));
  return bot;
}

/**
 * One grammY Bot per token, built on first use and kept (least recently used dropped beyond
 * `maxBots`). A Bot holds no connection of its own, so dropping one needs no clean-up.
 */
export class BotRegistry {
  readonly apiRoot: string;
  private readonly maxBots: number;
  private readonly client: BotClientOptions;
  private readonly bots = new Map<string, Bot>();

  constructor(options: BotRegistryOptions) {
    this.apiRoot = normalizeApiRoot(options.apiRoot);
    this.maxBots = Math.max(1, options.maxBots ?? 1000);
    this.client = options.client ?? {};
  }

  /** The Bot for a token; its `botInfo` is refreshed when the stored one changed. */
  get(token: string, botInfo: UserFromGetMe): Bot {
    let bot = this.bots.get(token);
    if (bot) {
      // Re-insert: a Map iterates in insertion order, so the first key is the least recently used.
      this.bots.delete(token);
      if (!sameBotInfo(bot.botInfo, botInfo)) bot.botInfo = botInfo;
    } else {
      bot = createBot(token, botInfo, this.apiRoot, this.client);
    }
    this.bots.set(token, bot);
    while (this.bots.size > this.maxBots) {
      const oldest = this.bots.keys().next();
      if (oldest.done) break;
      this.bots.delete(oldest.value);
    }
    return bot;
  }

  /** Drops the Bot of a token (its token was changed or the bot deleted). */
  forget(token: string): void {
    this.bots.delete(token);
  }

  get size(): number {
    return this.bots.size;
  }
}

function sameBotInfo(a: UserFromGetMe, b: UserFromGetMe): boolean {
  return a.id === b.id && a.username === b.username && a.first_name === b.first_name;
}

/**
 * Calls getMe for a token (when a bot is created or its token changed). Throws TelegramApiError,
 * whose message never holds the token: 401 means the token is wrong.
 */
export async function getMe(token: string, apiRoot: string, signal?: AbortSignal): Promise<UserFromGetMe> {
  const api = new Api(token, { apiRoot: normalizeApiRoot(apiRoot), timeoutSeconds: 30 });
  api.config.use(tokenGuard(token));
  try {
    return await api.getMe(grammySignal(signal));
  } catch (error) {
    throw toTelegramApiError(error, 'getMe', token);
  }
}

/**
 * Reads a stored getMe result (e.g. the bots.telegram_info column) back into the shape grammY
 * wants; null when it is not one. Flags missing from an older result default to false.
 */
export function parseBotInfo(value: unknown): UserFromGetMe | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  const v = value as Record<string, unknown>;
  if (typeof v.id !== 'number' || !Number.isSafeInteger(v.id) || v.is_bot !== true) return null;
  if (typeof v.first_name !== 'string' || typeof v.username !== 'string') return null;
  const flag = (key: string): boolean => v[key] === true;
  return {
    ...(v as object),
    id: v.id,
    is_bot: true,
    first_name: v.first_name,
    username: v.username,
    can_join_groups: flag('can_join_groups'),
    can_read_all_group_messages: flag('can_read_all_group_messages'),
    supports_inline_queries: flag('supports_inline_queries'),
    can_connect_to_business: flag('can_connect_to_business'),
    has_main_web_app: flag('has_main_web_app'),
    has_topics_enabled: flag('has_topics_enabled'),
    allows_users_to_create_topics: flag('allows_users_to_create_topics'),
    can_manage_bots: flag('can_manage_bots'),
    supports_join_request_queries: flag('supports_join_request_queries'),
  };
}
