/**
 * Telegram I/O: one grammY Bot per token, reading updates into events, sending within Telegram's
 * limits, webhook registration and long polling shared across worker processes. Tokens never
 * appear in an error message or a log line written here.
 */
export {
  BotRegistry,
  createBot,
  getMe,
  grammySignal,
  normalizeApiRoot,
  parseBotInfo,
  tokenGuard,
  type BotClientOptions,
  type BotRegistryOptions,
  type GrammySignal,
} from './bot-registry.js';
export {
  startPollers,
  type PolledBot,
  type Pollers,
  type StartPollersOptions,
} from './long-poller.js';
export { splitMessage, TELEGRAM_MESSAGE_LIMIT } from './message-splitting.js';
export {
  redactTokens,
  sanitizeHttpError,
  TelegramApiError,
  toTelegramApiError,
  type TelegramErrorInfo,
} from './safe-errors.js';
export {
  DEFAULT_SEND_LIMITS,
  isGroupChat,
  SendLimiter,
  type SendLimiterOptions,
  type SendLimits,
} from './send-limiter.js';
export {
  CALLBACK_DATA_MAX_BYTES,
  inlineKeyboard,
  isBlockedAnswer,
  TelegramSender,
  TelegramSendError,
  type BotCredentials,
  type ButtonLayout,
  type MessageButton,
  type SendResult,
  type TelegramSenderOptions,
} from './sender.js';
export {
  classifyUpdate,
  parseStartCommand,
  START_PAYLOAD_PATTERN,
  type ClassifyOptions,
  type TelegramEvent,
  type TelegramEventKind,
  type TelegramUserInfo,
} from './update-shape.js';
export {
  ALLOWED_UPDATES,
  generateWebhookSecret,
  registerWebhook,
  removeWebhook,
  usesWebhook,
  WEBHOOK_SECRET_PATTERN,
  webhookUrl,
} from './webhook-setup.js';
