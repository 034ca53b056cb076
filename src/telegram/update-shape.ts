/**
 * Reads a raw Telegram update (as it arrives at the webhook or from getUpdates) into the few kinds
 * of event the engine acts on. Pure and defensive: the input is untrusted JSON, nothing here throws.
 */

export interface TelegramUserInfo {
  username: string | null;
  firstName: string | null;
  lastName: string | null;
}

export type TelegramEvent =
  | { kind: 'start'; chatId: number; updateId: number; payload: string | null; user: TelegramUserInfo }
  | { kind: 'text'; chatId: number; updateId: number; text: string; user: TelegramUserInfo }
  | { kind: 'button'; chatId: number; updateId: number; callbackQueryId: string; data: string; user: TelegramUserInfo }
  | { kind: 'blocked'; chatId: number; updateId: number }
  | { kind: 'unblocked'; chatId: number; updateId: number }
  | { kind: 'other'; chatId: number; updateId: number };

export interface ClassifyOptions {
  /**
   * The bot's username. When given, `/start@otherbot` (a command addressed to another bot in a
   * group) is read as plain text rather than as this bot's /start.
   */
  botUsername?: string;
}

/** A deep-link payload: `t.me/<bot>?start=<payload>`. */
const START_PAYLOAD_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

// `/start`, `/start@botname`, optionally followed by whitespace and a payload.
const START_COMMAND = /^\/start(?:@([A-Za-z0-9_]{1,64}))?(?:\s+([\s\S]*))?$/;

type Json = Record<string, unknown>;

function asObject(value: unknown): Json | null {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Json) : null;
}

function asId(value: unknown): number | null {
  return typeof value === 'number' && Number.isSafeInteger(value) ? value : null;
}

function asString(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

function userInfo(from: unknown, chat: Json | null): TelegramUserInfo {
  // A message in a private chat always has `from`; fall back to the chat's names when it has not.
  const source = asObject(from) ?? (chat && chat.type === 'private' ? chat : null);
  return {
    username: asString(source?.username),
    firstName: asString(source?.first_name),
    lastName: asString(source?.last_name),
  };
}

/** The payload of a `/start` command, or undefined when the text is not this bot's /start. */
function parseStartCommand(text: string, options: ClassifyOptions = {}): { payload: string | null } | undefined {
  const match = START_COMMAND.exec(text.trim());
  if (!match) return undefined;
  const mention = match[1];
  if (
    mention !== undefined &&
    options.botUsername !== undefined &&
    mention.toLowerCase() !== options.botUsername.toLowerCase()
  ) {
    return undefined;
  }
  const payload = match[2]?.trim() ?? '';
  return { payload: START_PAYLOAD_PATTERN.test(payload) ? payload : null };
}

function classifyMessage(updateId: number, message: Json, options: ClassifyOptions): TelegramEvent | null {
  const chat = asObject(message.chat);
  const chatId = asId(chat?.id);
  if (chatId === null) return null;
  const text = asString(message.text);
  if (text === null) return { kind: 'other', chatId, updateId };
  const user = userInfo(message.from, chat);
  const start = parseStartCommand(text, options);
  if (start) return { kind: 'start', chatId, updateId, payload: start.payload, user };
  return { kind: 'text', chatId, updateId, text, user };
}

function classifyCallbackQuery(updateId: number, query: Json): TelegramEvent | null {
  const callbackQueryId = asString(query.id);
  const data = asString(query.data);
  if (callbackQueryId === null || callbackQueryId === '' || data === null) return null;
  const message = asObject(query.message);
  const chat = asObject(message?.chat);
  const from = asObject(query.from);
  // A button under a message the bot sent: that message's chat. Without one (inline mode), the
  // user's private chat, whose id is the user's id.
  const chatId = asId(chat?.id) ?? asId(from?.id);
  if (chatId === null) return null;
  return { kind: 'button', chatId, updateId, callbackQueryId, data, user: userInfo(from, chat) };
}

function classifyMyChatMember(updateId: number, change: Json): TelegramEvent | null {
  const chatId = asId(asObject(change.chat)?.id);
  const status = asString(asObject(change.new_chat_member)?.status);
  if (chatId === null || status === null) return null;
  switch (status) {
    // The user blocked the bot (private chat), or the bot was removed from a group.
    case 'kicked':
    case 'left':
      return { kind: 'blocked', chatId, updateId };
    case 'member':
    case 'administrator':
      return { kind: 'unblocked', chatId, updateId };
    default:
      return null;
  }
}

/**
 * The event an update carries; null when it is not an update this engine reads (garbage, an
 * update kind outside `message`, `callback_query` and `my_chat_member`, or one missing its chat).
 */
export function classifyUpdate(update: unknown, options: ClassifyOptions = {}): TelegramEvent | null {
  try {
    const root = asObject(update);
    if (!root) return null;
    const updateId = asId(root.update_id);
    if (updateId === null) return null;
    const message = asObject(root.message);
    if (message) return classifyMessage(updateId, message, options);
    const query = asObject(root.callback_query);
    if (query) return classifyCallbackQuery(updateId, query);
    const change = asObject(root.my_chat_member);
    if (change) return classifyMyChatMember(updateId, change);
    return null;
  } catch {
    // Getters on a hostile object (a Proxy, say) are the only way to get here.
    return null;
  }
}
