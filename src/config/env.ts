import { randomBytes } from 'node:crypto';
import ipaddr from 'ipaddr.js';
import { z } from 'zod';

/** Every setting flowpost reads from the environment, validated once at start-up. */
export interface Config {
  nodeEnv: string;
  port: number;
  databaseUrl: string;
  redisUrl: string;
  publicUrl: string;
  adminApiKey: string;
  /** True when ADMIN_API_KEY was not set and a development key was generated. */
  adminApiKeyGenerated: boolean;
  telegramApiRoot: string;
  /** Messages a second each bot may send, across all worker processes (Telegram: about 30). */
  telegramBotRateLimit: number;
  /** Messages a second to one private chat (Telegram: 1). */
  telegramChatRateLimit: number;
  /** getUpdates long-poll timeout when bots are polled (no https PUBLIC_URL). */
  telegramPollTimeoutSeconds: number;
  outboundAllowCidrs: string[];
  outboundRetrySchedule: number[];
  outboundTimeoutMs: number;
  /** How long a job, dialog lease or poll lock stays with a worker that stopped answering: its work is taken over within about 1.5 × this. */
  queueLockMs: number;
  /** Deliveries one host may have in flight at once, across all worker processes. */
  outboundMaxPerHost: number;
  workerConcurrency: number;
  /** Dialog updates a worker process holds at once; they are written to Postgres together. */
  dialogUpdatesConcurrency: number;
  logLevel: string;
  queuePrefix: string;
  postbackRateLimit: number;
  /** Bearer token that GET /metrics requires when set. */
  metricsToken: string | undefined;
  /** A worker process serves its own /metrics on this port when set (it has no web port on Heroku). */
  metricsPort: number | undefined;
  /** False accepts a Redis TLS certificate nobody vouches for (Heroku Redis' self-signed one). */
  redisTlsRejectUnauthorized: boolean;
  /** TLS to Postgres: off, on without checking the certificate (Heroku), or on and checked; unset follows the URL's sslmode. */
  databaseSsl: 'false' | 'no-verify' | 'true' | undefined;
  /** How long finished rows are kept before the worker deletes them, in days. */
  retention: {
    deliveriesDays: number;
    messagesDays: number;
    unclaimedClicksDays: number;
    deadInputsDays: number;
    /** Handled dialog inputs (done, superseded): also how long a repeat of one is recognised. */
    handledInputsDays: number;
    /** The log of conversion calls (the conversions themselves stay). */
    conversionEventsDays: number;
  };
}

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    reason: string,
  ) {
    super(`${variable}: ${reason}`);
    this.name = 'ConfigError';
  }
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const urlWithProtocols = (protocols: string[]) =>
  z.string().refine(
    (value) => {
      try {
        return protocols.includes(new URL(value).protocol);
      } catch {
        return false;
      }
    },
    `must be a URL with one of ${protocols.join(', ')}`,
  );

const positiveInt = (max: number) =>
  z.coerce.number().int('must be a whole number').min(1, 'must be at least 1').max(max, `must be at most ${max}`);

const cidrList = z.string().transform((value, ctx) => {
  const items = value
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);
  for (const item of items) {
    if (!ipaddr.IPv4.isValidCIDRFourPartDecimal(item) && !ipaddr.IPv6.isValidCIDR(item)) {
      ctx.addIssue({ code: 'custom', message: `"${item}" is not a CIDR range such as 10.0.0.0/8` });
    }
  }
  return items;
});

const secondsList = z.string().transform((value, ctx) => {
  const items = value.split(',').map((item) => item.trim());
  const seconds = items.map(Number);
  // An empty item ("5,,300") is a typo, not 0 seconds.
  if (items.some((item) => item === '') || seconds.some((s) => !Number.isFinite(s) || s < 0 || s > 7 * 86_400)) {
    ctx.addIssue({ code: 'custom', message: 'must be comma-separated seconds between 0 and 604800, e.g. 0,5,300' });
  }
  return seconds;
});

const booleanSetting = z
  .enum(['true', 'false', '1', '0'], { message: 'must be true or false' })
  .transform((value) => value === 'true' || value === '1');

const schema = z.object({
  NODE_ENV: z.string().default('development'),
  PORT: z.coerce.number().int('must be a whole number').min(0).max(65_535, 'must be a port number').default(3000),
  DATABASE_URL: urlWithProtocols(['postgres:', 'postgresql:']).default('postgres://postgres@127.0.0.1:5432/flowpost'),
  REDIS_URL: urlWithProtocols(['redis:', 'rediss:']).default('redis://127.0.0.1:6379'),
  PUBLIC_URL: urlWithProtocols(['http:', 'https:']).optional(),
  ADMIN_API_KEY: z.string().min(16, 'must be at least 16 characters').optional(),
  TELEGRAM_API_ROOT: urlWithProtocols(['http:', 'https:']).default('https://api.telegram.org'),
  TELEGRAM_BOT_RATE_LIMIT: z.coerce.number().min(0, 'must be 0 (no limit) or more').max(100_000).default(30),
  TELEGRAM_CHAT_RATE_LIMIT: z.coerce.number().min(0, 'must be 0 (no limit) or more').max(1_000).default(1),
  TELEGRAM_POLL_TIMEOUT: z.coerce.number().int().min(0).max(50, 'must be at most 50 seconds').default(25),
  OUTBOUND_ALLOW_CIDRS: cidrList.default([]),
  OUTBOUND_RETRY_SCHEDULE: secondsList.default([0, 5, 300, 1800, 7200, 18_000, 36_000, 36_000]),
  OUTBOUND_TIMEOUT_MS: positiveInt(120_000).default(10_000),
  OUTBOUND_MAX_PER_HOST: positiveInt(10_000).default(16),
  QUEUE_LOCK_MS: z.coerce.number().int().min(500, 'must be at least 500').max(600_000).default(10_000),
  WORKER_CONCURRENCY: positiveInt(10_000).default(64),
  DIALOG_UPDATES_CONCURRENCY: positiveInt(10_000).default(512),
  LOG_LEVEL: z.enum(LOG_LEVELS, { message: `must be one of ${LOG_LEVELS.join(', ')}` }).default('info'),
  QUEUE_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1-64 letters, digits, "_" or "-"')
    .default('flowpost'),
  POSTBACK_RATE_LIMIT: positiveInt(1_000_000).default(2000),
  METRICS_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  METRICS_PORT: z.coerce.number().int('must be a whole number').min(0).max(65_535, 'must be a port number').optional(),
  REDIS_TLS_REJECT_UNAUTHORIZED: booleanSetting.default(true),
  DATABASE_SSL: z.enum(['false', 'no-verify', 'true'], { message: 'must be one of false, no-verify, true' }).optional(),
  RETENTION_DELIVERIES_DAYS: positiveInt(3_650).default(30),
  RETENTION_MESSAGES_DAYS: positiveInt(3_650).default(90),
  RETENTION_UNCLAIMED_CLICKS_DAYS: positiveInt(3_650).default(30),
  RETENTION_DEAD_INPUTS_DAYS: positiveInt(3_650).default(30),
  RETENTION_HANDLED_INPUTS_DAYS: positiveInt(3_650).default(2),
  RETENTION_CONVERSION_EVENTS_DAYS: positiveInt(3_650).default(90),
});

/**
 * Reads the configuration from an environment. Empty strings count as unset.
 * Throws ConfigError naming the first bad variable.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const present = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value !== ''));
  const parsed = schema.safeParse(present);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ConfigError(String(issue.path[0] ?? 'environment'), issue.message);
  }
  const e = parsed.data;
  const production = e.NODE_ENV === 'production';
  if (!e.ADMIN_API_KEY && production) {
    throw new ConfigError('ADMIN_API_KEY', 'is required when NODE_ENV=production');
  }
  return {
    nodeEnv: e.NODE_ENV,
    port: e.PORT,
    databaseUrl: e.DATABASE_URL,
    redisUrl: e.REDIS_URL,
    publicUrl: (e.PUBLIC_URL ?? `http://localhost:${e.PORT}`).replace(/\/+$/, ''),
    adminApiKey: e.ADMIN_API_KEY ?? randomBytes(24).toString('base64url'),
    adminApiKeyGenerated: !e.ADMIN_API_KEY,
    telegramApiRoot: e.TELEGRAM_API_ROOT.replace(/\/+$/, ''),
    telegramBotRateLimit: e.TELEGRAM_BOT_RATE_LIMIT,
    telegramChatRateLimit: e.TELEGRAM_CHAT_RATE_LIMIT,
    telegramPollTimeoutSeconds: e.TELEGRAM_POLL_TIMEOUT,
    outboundAllowCidrs: e.OUTBOUND_ALLOW_CIDRS,
    outboundRetrySchedule: e.OUTBOUND_RETRY_SCHEDULE,
    outboundTimeoutMs: e.OUTBOUND_TIMEOUT_MS,
    outboundMaxPerHost: e.OUTBOUND_MAX_PER_HOST,
    queueLockMs: e.QUEUE_LOCK_MS,
    workerConcurrency: e.WORKER_CONCURRENCY,
    dialogUpdatesConcurrency: e.DIALOG_UPDATES_CONCURRENCY,
    logLevel: e.LOG_LEVEL,
    queuePrefix: e.QUEUE_PREFIX,
    postbackRateLimit: e.POSTBACK_RATE_LIMIT,
    metricsToken: e.METRICS_TOKEN,
    metricsPort: e.METRICS_PORT,
    redisTlsRejectUnauthorized: e.REDIS_TLS_REJECT_UNAUTHORIZED,
    databaseSsl: e.DATABASE_SSL,
    retention: {
      deliveriesDays: e.RETENTION_DELIVERIES_DAYS,
      messagesDays: e.RETENTION_MESSAGES_DAYS,
      unclaimedClicksDays: e.RETENTION_UNCLAIMED_CLICKS_DAYS,
      deadInputsDays: e.RETENTION_DEAD_INPUTS_DAYS,
      handledInputsDays: e.RETENTION_HANDLED_INPUTS_DAYS,
      conversionEventsDays: e.RETENTION_CONVERSION_EVENTS_DAYS,
    },
  };
}
