import { describe, expect, it } from 'vitest';
import type { Config } from '../../src/config/env.js';
import { createLogger } from '../../src/config/log.js';
import { announceAdminKey } from '../../src/cli/process.js';
import { metricsAuthorized } from '../../src/http/auth.js';
import { telegramOutcome, webhookOutcome } from '../../src/observability/outcomes.js';
import { checkReadiness, workersCheck } from '../../src/observability/readiness.js';
import { methodLabel, requestIdOf, routeOf } from '../../src/observability/request-context.js';

function capture(level = 'info') {
  const lines: string[] = [];
  return { lines, log: createLogger(level, 'flowpost', { write: (line: string) => void lines.push(line) }) };
}

describe('log redaction', () => {
  const SECRETS = {
    token: '111111:AAAAtoken-at-top-level-xxxxxxxx',
    telegramToken: 'telegram-token-value',
    secret: 'signing-secret-top',
    signingSecret: 'whsec_signing-secret-value',
    adminApiKey: 'configured-admin-key-value',
    metricsToken: 'metrics-token-value-123456',
    databaseUrl: 'postgres://app:db-password-value@db.example/app',
  };

  it('hides every secret field, at the top level and one level down', () => {
    const { lines, log } = capture();
    log.info(
      { ...SECRETS, bot: { token: 'nested-bot-token-value' }, destination: { secret: 'nested-secret-value' } },
      'x',
    );
    const line = lines.join('');
    for (const value of [...Object.values(SECRETS), 'nested-bot-token-value', 'nested-secret-value'])
      expect(line).not.toContain(value);
    expect(JSON.parse(line)).toMatchObject({ token: '[redacted]', bot: { token: '[redacted]' } });
  });

  it('hides Authorization headers, whatever their case, where requests and headers are logged', () => {
    const { lines, log } = capture();
    log.info({ headers: { authorization: 'Bearer one-secret-value' } }, 'a');
    log.info({ headers: { Authorization: 'Bearer two-secret-value' } }, 'b');
    log.info({ req: { headers: { authorization: 'Basic three-secret-value' } } }, 'c');
    log.info({ request: { headers: { 'x-telegram-bot-api-secret-token': 'four-secret-value' } } }, 'd');
    log.info({ authorization: 'Bearer five-secret-value' }, 'e');
    const text = lines.join('');
    for (const n of ['one', 'two', 'three', 'four', 'five']) expect(text).not.toContain(`${n}-secret-value`);
    expect(JSON.parse(lines[0]!)).toMatchObject({ headers: { authorization: '[redacted]' } });
  });

  it('hides bot tokens and URL passwords inside logged errors', () => {
    const { lines, log } = capture();
    const error = new Error(
      'request to https://api.telegram.org/bot123456:ABCdefGHIjklMNOpqrSTUvwxYZ012345/sendMessage failed; postgres://app:pg-pass-value@db/app',
    );
    log.error({ err: error }, 'failed');
    const text = lines.join('');
    expect(text).not.toContain('ABCdefGHIjklMNOpqrSTUvwxYZ012345');
    expect(text).not.toContain('pg-pass-value');
    expect(text).toContain('sendMessage failed');
    log.warn({ err: null }, 'no error');
    log.warn({ err: 'a string' }, 'a string');
    expect(lines).toHaveLength(3);
  });

  it('announces a generated development key in the message, and never a configured key', () => {
    const generated = capture();
    announceAdminKey({ adminApiKeyGenerated: true, adminApiKey: 'generated-dev-key-abc' } as Config, generated.log);
    expect(generated.lines.join('')).toContain('generated-dev-key-abc');
    const configured = capture('trace');
    announceAdminKey({ adminApiKeyGenerated: false, adminApiKey: 'configured-key-abc' } as Config, configured.log);
    expect(configured.lines.join('')).not.toContain('configured-key-abc');
  });
});

describe('request ids and route names', () => {
  it("keeps a caller's plausible id, and makes up one otherwise", () => {
    expect(requestIdOf('abc-123_x.y:z')).toBe('abc-123_x.y:z');
    expect(requestIdOf('a'.repeat(128))).toBe('a'.repeat(128));
    const made = [undefined, '', 'a'.repeat(129), 'with space', 'quote"', 'é'].map((bad) => requestIdOf(bad));
    // A process's own prefix and a counter: each one new.
    for (const id of made) expect(id).toMatch(/^[0-9a-f]{12}-[0-9a-z]+$/);
    expect(new Set(made).size).toBe(made.length);
  });

  it('names routes by prefix and bounds methods, never echoing a raw path', () => {
    expect(routeOf('/api/v1/bots/123/webhooks')).toBe('management');
    expect(routeOf('/admin/queues/api/queues')).toBe('queue_dashboard');
    expect(routeOf('/admin/queuesx')).toBe('unmatched');
    expect(routeOf('/random/path/9f1c')).toBe('unmatched');
    expect(methodLabel('GET')).toBe('GET');
    expect(methodLabel('PROPFIND')).toBe('other');
  });
});

describe('outcome classes', () => {
  it('classes webhook attempts by status class or failure', () => {
    expect(webhookOutcome({ status: 204 })).toBe('2xx');
    expect(webhookOutcome({ status: 302, errorKind: 'redirect' })).toBe('3xx');
    expect(webhookOutcome({ status: 404 })).toBe('4xx');
    expect(webhookOutcome({ status: 503 })).toBe('5xx');
    expect(webhookOutcome({ status: 200, errorKind: 'timeout' })).toBe('timeout');
    expect(webhookOutcome({ errorKind: 'timeout' })).toBe('timeout');
    expect(webhookOutcome({ errorKind: 'refused_target' })).toBe('refused');
    expect(webhookOutcome({ errorKind: 'network', error: 'ECONNREFUSED: connect ECONNREFUSED 10.0.0.1:80' })).toBe(
      'refused',
    );
    expect(webhookOutcome({ errorKind: 'network', error: 'ECONNRESET: socket hang up' })).toBe('network');
    expect(webhookOutcome({ errorKind: 'too_large' })).toBe('invalid');
  });

  it('classes Bot API answers', () => {
    expect(telegramOutcome({ ok: true })).toBe('ok');
    expect(telegramOutcome({ ok: false, errorCode: 429 })).toBe('throttled');
    expect(telegramOutcome({ ok: false, errorCode: 403, blocked: true })).toBe('blocked');
    expect(telegramOutcome({ ok: false, errorCode: 400 })).toBe('client_error');
    expect(telegramOutcome({ ok: false, errorCode: 502 })).toBe('server_error');
    expect(telegramOutcome({ ok: false, errorCode: undefined })).toBe('network');
  });
});

describe('readiness', () => {
  it('names each failed check with a short reason, bounded by the timeout, without URL credentials', async () => {
    const readiness = await checkReadiness(
      {
        fine: () => Promise.resolve(),
        hung: () => new Promise(() => undefined),
        broken: () => Promise.reject(new Error('could not reach redis://user:hunter2@host:6379')),
        workers: workersCheck(() => ['dialog-updates']),
      },
      50,
    );
    expect(readiness).toEqual({
      ok: false,
      checks: {
        fine: { ok: true },
        hung: { ok: false, error: 'no answer within 50 ms' },
        broken: { ok: false, error: 'could not reach redis://[redacted]@host:6379' },
        workers: { ok: false, error: 'paused on a postgres outage: dialog-updates' },
      },
    });
  });
});

describe('metrics token', () => {
  it('is required as a Bearer token when set, compared exactly', () => {
    expect(metricsAuthorized(undefined, undefined)).toBe(true);
    expect(metricsAuthorized(undefined, 'token-0123456789abcdef')).toBe(false);
    expect(metricsAuthorized('Bearer token-0123456789abcdef', 'token-0123456789abcdef')).toBe(true);
    expect(metricsAuthorized('bearer  token-0123456789abcdef ', 'token-0123456789abcdef')).toBe(true);
    expect(metricsAuthorized('Bearer token-0123456789abcdeF', 'token-0123456789abcdef')).toBe(false);
    expect(metricsAuthorized('Basic dG9rZW4=', 'token-0123456789abcdef')).toBe(false);
  });
});
