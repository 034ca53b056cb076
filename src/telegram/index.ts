/**
 * Telegram I/O: one grammY Bot per token, reading updates into events, sending within Telegram's
 * limits, webhook registration and long polling shared across worker processes. Tokens never
 * appear in an error message or a log line written here.
 */
export {
  BotRegistry,
  createBot,
  getMe,
  parseBotInfo,
  type BotClientOptions,
  type BotRegistryOptions,
  type GrammySignal,
} from './bot-registry.js';
export { startPollers, type PolledBot, type Pollers, type StartPollersOptions } from './long-poller.js';
export { splitMessage } from './message-splitting.js';
export { TelegramApiError, type TelegramErrorInfo } from './safe-errors.js';
export { SendLimiter, type SendLimiterOptions, type SendLimits, type SpareSlot } from './send-limiter.js';
export {
  TelegramSender,
  TelegramSendError,
  type BotCredentials,
  type ButtonLayout,
  type MessageButton,
  type SendOptions,
  type SendResult,
  type TelegramSenderOptions,
} from './sender.js';
export { classifyUpdate, type ClassifyOptions, type TelegramEvent, type TelegramUserInfo } from './update-shape.js';
export { generateWebhookSecret, registerWebhook, removeWebhook, usesWebhook, webhookUrl } from './webhook-setup.js';
