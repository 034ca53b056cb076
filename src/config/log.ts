import pino, { stdSerializers, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/**
 * Logging conventions. Every line of a process carries `role` (the process: `web`, `worker`, `all`,
 * `release`); a module's lines carry `component` (`http`, `telegram`, `dialogs`, `metrics`, …); a
 * queue consumer's lines carry `queue` (its BullMQ queue) instead. A web request's lines carry
 * `requestId` (its X-Request-Id), and so do the worker's lines for a job that request queued.
 */

/** Field names whose values are secrets, wherever they appear (top level or one level down). */
const SECRET_FIELDS = [
  'token',
  'telegramToken',
  'botToken',
  'secret',
  'signingSecret',
  'webhookSecret',
  'adminApiKey',
  'metricsToken',
  'password',
  'databaseUrl',
  'redisUrl',
  'authorization',
  'Authorization',
];

/** Header names whose values are secrets; pino paths are exact, so both usual spellings. */
const SECRET_HEADERS = [
  'authorization',
  'Authorization',
  'cookie',
  'x-telegram-bot-api-secret-token',
  'X-Telegram-Bot-Api-Secret-Token',
];

const REDACTED_PATHS = [
  ...SECRET_FIELDS,
  ...SECRET_FIELDS.map((field) => `*.${field}`),
  ...SECRET_HEADERS.flatMap((header) => {
    const key = header.includes('-') ? `["${header}"]` : `.${header}`;
    return [`headers${key}`, `*.headers${key}`, `req.headers${key}`, `request.headers${key}`];
  }),
];

/** A bot token (`123456:ABC…`), a Bot API URL's token, and a URL's password. */
const TOKEN = /\d{1,20}:[A-Za-z0-9_-]{20,}/g;
const URL_TOKEN = /\/bot[^/\s]+\//g;
const URL_PASSWORD = /(\/\/[^/\s:@]*):[^/\s@]*@/g;

/** Hides bot tokens and URL passwords in a text (an error's message or stack). */
function redactSecretsInText(text: string): string {
  return text
    .replace(URL_TOKEN, '/bot[redacted]/')
    .replace(TOKEN, '[redacted]')
    .replace(URL_PASSWORD, '$1:[redacted]@');
}

/**
 * Errors as pino serializes them, with bot tokens and URL passwords hidden from their messages and
 * stacks: a library's error (a fetch failure of grammY, a driver's) may quote the URL it called.
 */
function errorSerializer(error: Error): ReturnType<typeof stdSerializers.err> {
  const serialized = stdSerializers.err(error);
  // Anything but an error (null, a string) comes back as it was.
  if (typeof serialized !== 'object' || serialized === null) return serialized;
  if (typeof serialized.message === 'string') serialized.message = redactSecretsInText(serialized.message);
  if (typeof serialized.stack === 'string') serialized.stack = redactSecretsInText(serialized.stack);
  return serialized;
}

/**
 * The process logger: JSON lines on stdout (or `destination`, which tests read). Secrets are
 * redacted wherever they appear.
 */
export function createLogger(level: string, name = 'flowpost', destination?: DestinationStream): Logger {
  const options = {
    name,
    level,
    serializers: { err: errorSerializer },
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
  };
  return destination ? pino(options, destination) : pino(options);
}
