import { ConfigError, loadConfig, type Config } from '../config/env.js';
import { createLogger, type Logger } from '../config/log.js';

/** Loads the configuration or stops the process with a message naming the bad variable. */
export function loadConfigOrExit(): Config {
  try {
    return loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`flowpost: invalid configuration: ${error.message}\n`);
      process.exit(78);
    }
    throw error;
  }
}

export function announceAdminKey(config: Config, log: Logger): void {
  // The only secret ever logged, on purpose: a key generated for this run alone (no ADMIN_API_KEY),
  // which the developer needs to call the API. It is in the message text because the `adminApiKey`
  // field is redacted; a configured key is never logged.
  if (config.adminApiKeyGenerated) {
    log.warn(
      `ADMIN_API_KEY is not set: using the generated development key ${config.adminApiKey} for this run (set ADMIN_API_KEY to keep one)`,
    );
  }
}

/** Past this, a close still running is given up: Heroku kills 30 s after its SIGTERM, and a log line should say why. */
const SHUTDOWN_DEADLINE_MS = 25_000;

/**
 * The first SIGTERM/SIGINT closes gracefully; a second SIGINT (Ctrl-C again) exits at once. More
 * SIGTERMs change nothing: a platform signals every process of the container, so a process started
 * by `npm run` gets one from the platform and one forwarded by npm.
 */
export function onShutdown(log: Logger, close: () => Promise<void>): void {
  let closing = false;
  const handler = (signal: NodeJS.Signals) => {
    if (closing) {
      if (signal === 'SIGTERM') return;
      log.warn({ signal }, 'forced exit');
      process.exit(1);
    }
    closing = true;
    log.info({ signal }, 'shutting down');
    setTimeout(() => {
      log.error({ deadlineMs: SHUTDOWN_DEADLINE_MS }, 'shutdown took too long; exiting before the platform kills');
      process.exit(1);
    }, SHUTDOWN_DEADLINE_MS).unref();
    close().then(
      () => process.exit(0),
      (error: unknown) => {
        log.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
}

export function processLogger(config: Config, role: string): Logger {
  return createLogger(config.logLevel).child({ role });
}
