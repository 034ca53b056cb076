import pino, { type Logger } from 'pino';

export type { Logger };

/** The process logger: JSON lines on stdout. Secrets are redacted wherever they appear. */
export function createLogger(level: string, name = 'flowpost'): Logger {
  return pino({
    name,
    level,
    redact: {
      paths: [
        'token',
        'telegramToken',
        '*.token',
        '*.telegramToken',
        'headers.authorization',
        '*.headers.authorization',
      ],
      censor: '[redacted]',
    },
  });
}
