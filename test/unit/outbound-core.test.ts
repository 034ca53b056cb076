import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import type { Agent, buildConnector } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_RETRY_SCHEDULE_SECONDS,
  MAX_BODY_BYTES,
  TargetRefusedError,
  attemptDelivery,
  buildSignatureHeaders,
  checkAddress,
  classifyAddress,
  classifyOutcome,
  createGuardedAgent,
  createGuardedConnector,
  type DeliveryRequest,
  generateSigningSecret,
  isAllowed,
  nextAttemptDelayMs,
  parseRetryAfter,
  signPayload,
  validateDeliveryRequest,
  verifySignature,
} from '../../src/outbound/delivery/index.js';
import { freePort } from '../support/free-port.js';

const LOOPBACK_ALLOWED = ['127.0.0.0/8', '::1/128'];

interface Received {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

interface TestServer {
  port: number;
  url: string;
  connections: number;
  requests: Received[];
  close(): Promise<void>;
}

/** An HTTP server on `host` that counts connections and records requests. */
async function startServer(
  handler: (req: http.IncomingMessage, res: http.ServerResponse) => void,
  host = '127.0.0.1',
): Promise<TestServer> {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      state.requests.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
      });
      handler(req, res);
    });
  });
  server.on('connection', () => {
    state.connections += 1;
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  const state: TestServer = {
    port,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    connections: 0,
    requests: [],
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return state;
}

const agents: Agent[] = [];
function agent(options: Parameters<typeof createGuardedAgent>[0] = {}): Agent {
  const created = createGuardedAgent({ connectTimeoutMs: 2_000, ...options });
  agents.push(created);
  return created;
}

afterAll(async () => {
  await Promise.all(agents.map((a) => a.destroy()));
});

describe('retry policy', () => {
  it('classifies outcomes: only 2xx succeeds; 408/425/429/5xx, 3xx, timeouts and network errors retry', () => {
    const cases: Array<[Parameters<typeof classifyOutcome>[0], string]> = [
      [{ status: 200 }, 'success'],
      [{ status: 204 }, 'success'],
      [{ status: 299 }, 'success'],
      [{ status: 301, error: 'redirect' }, 'retry'],
      [{ status: 302 }, 'retry'],
      [{ status: 400 }, 'final'],
      [{ status: 401 }, 'final'],
      [{ status: 404 }, 'final'],
      [{ status: 410 }, 'final'],
      [{ status: 408 }, 'retry'],
      [{ status: 425 }, 'retry'],
      [{ status: 429 }, 'retry'],
      [{ status: 500 }, 'retry'],
      [{ status: 502 }, 'retry'],
      [{ status: 503 }, 'retry'],
      [{ error: 'timeout' }, 'retry'],
      [{ error: 'network' }, 'retry'],
      [{ error: 'redirect' }, 'retry'],
      [{ error: 'something unheard of' }, 'retry'],
      [{ error: 'refused_target' }, 'final'],
      [{ error: 'invalid_request' }, 'final'],
      [{ error: 'too_large' }, 'final'],
      [{}, 'retry'],
    ];
    for (const [input, expected] of cases) expect(classifyOutcome(input), JSON.stringify(input)).toBe(expected);
  });

  it('waits schedule[attempt] seconds with ±20 % jitter, and stops when the schedule is exhausted', () => {
    const now = new Date('2026-01-01T00:00:00Z');
    expect(DEFAULT_RETRY_SCHEDULE_SECONDS).toEqual([0, 5, 300, 1800, 7200, 18000, 36000, 36000]);
    for (let attempt = 1; attempt < DEFAULT_RETRY_SCHEDULE_SECONDS.length; attempt += 1) {
      const base = (DEFAULT_RETRY_SCHEDULE_SECONDS[attempt] as number) * 1000;
      const low = nextAttemptDelayMs({ attempt, random: () => 0, now });
      const mid = nextAttemptDelayMs({ attempt, random: () => 0.5, now });
      const high = nextAttemptDelayMs({ attempt, random: () => 0.999_999_9, now });
      expect(low).toBe(Math.round(base * 0.8));
      expect(mid).toBe(base);
      expect(high).toBeLessThanOrEqual(Math.round(base * 1.2));
      expect(high).toBeGreaterThan(Math.round(base * 1.19));
      for (let i = 0; i < 50; i += 1) {
        const delay = nextAttemptDelayMs({ attempt, random: Math.random, now }) as number;
        expect(delay).toBeGreaterThanOrEqual(base * 0.8 - 1);
        expect(delay).toBeLessThanOrEqual(base * 1.2 + 1);
      }
    }
    expect(nextAttemptDelayMs({ attempt: 8, random: () => 0.5, now })).toBeNull();
    expect(nextAttemptDelayMs({ attempt: 2, schedule: [0, 10], random: () => 0.5, now })).toBeNull();
    expect(nextAttemptDelayMs({ attempt: 1, schedule: [0, 10], random: () => 0.5, now })).toBe(10_000);
    expect(() => nextAttemptDelayMs({ attempt: 0, random: () => 0.5, now })).toThrow(RangeError);
  });

  it('honours Retry-After, clamped to [1 s, 1 h], but never adds attempts', () => {
    const now = new Date('2026-01-01T00:00:00Z');
    const at = (header: string, attempt = 1) =>
      nextAttemptDelayMs({ attempt, retryAfterHeader: header, random: () => 0.5, now });
    expect(at('7')).toBe(7_000);
    expect(at('120', 5)).toBe(120_000); // shorter than the scheduled 5 h
    expect(at('0')).toBe(1_000);
    expect(at('86400')).toBe(3_600_000);
    expect(at(new Date(now.getTime() + 30_000).toUTCString())).toBe(30_000);
    expect(at(new Date(now.getTime() - 30_000).toUTCString())).toBe(1_000);
    expect(at('soon')).toBe(5_000); // unparsable: the schedule
    expect(at('7', 8)).toBeNull();
  });

  it('parses Retry-After as delta-seconds or any HTTP-date form', () => {
    const now = new Date('1994-11-06T08:49:00Z');
    expect(parseRetryAfter('37', now)).toBe(37_000);
    expect(parseRetryAfter(' 37 ', now)).toBe(37_000);
    expect(parseRetryAfter('Sun, 06 Nov 1994 08:49:37 GMT', now)).toBe(37_000);
    expect(parseRetryAfter('Sunday, 06-Nov-94 08:49:37 GMT', now)).toBe(37_000);
    expect(parseRetryAfter('Sun Nov  6 08:49:37 1994', now)).toBe(37_000);
    expect(parseRetryAfter('Sun, 06 Nov 1994 08:48:00 GMT', now)).toBe(0);
    for (const junk of ['', '-5', '1.5', 'soon', '2026-01-01', 'Sun, 06 Nov 1994', null, undefined]) {
      expect(parseRetryAfter(junk, now), String(junk)).toBeNull();
    }
  });
});

describe('Standard Webhooks signature', () => {
  // The vector of the reference JavaScript library (standard-webhooks, "sign function works").
  const vector = {
    secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
    msgId: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
    timestamp: 1614265330,
    body: '{"test": 2432232314}',
    signature: 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
  };
  const at = new Date(vector.timestamp * 1000);
  const headers = {
    'webhook-id': vector.msgId,
    'webhook-timestamp': String(vector.timestamp),
    'webhook-signature': vector.signature,
  };

  it('signs the reference vector', () => {
    expect(signPayload(vector)).toBe(vector.signature);
    expect(signPayload({ ...vector, body: Buffer.from(vector.body) })).toBe(vector.signature);
    expect(signPayload({ ...vector, secret: vector.secret.slice('whsec_'.length) })).toBe(vector.signature);
  });

  it('verifies as a receiver: good, tampered, wrong secret, stale, future, rotated', () => {
    expect(verifySignature({ secret: vector.secret, headers, body: vector.body, now: at })).toEqual({
      ok: true,
      msgId: vector.msgId,
      timestamp: vector.timestamp,
    });
    // Header names in any case, and a Fetch Headers object.
    const upper = {
      'Webhook-Id': headers['webhook-id'],
      'WEBHOOK-TIMESTAMP': headers['webhook-timestamp'],
      'Webhook-Signature': headers['webhook-signature'],
    };
    expect(verifySignature({ secret: vector.secret, headers: upper, body: vector.body, now: at }).ok).toBe(true);
    expect(
      verifySignature({ secret: vector.secret, headers: new Headers(headers), body: vector.body, now: at }).ok,
    ).toBe(true);

    const no = (input: Partial<Parameters<typeof verifySignature>[0]>) =>
      verifySignature({ secret: vector.secret, headers, body: vector.body, now: at, ...input });
    expect(no({ body: '{"test": 2432232315}' })).toEqual({ ok: false, reason: 'no_matching_signature' });
    expect(no({ secret: generateSigningSecret() })).toEqual({ ok: false, reason: 'no_matching_signature' });
    expect(no({ headers: { ...headers, 'webhook-id': 'msg_other' } })).toEqual({
      ok: false,
      reason: 'no_matching_signature',
    });
    expect(no({ now: new Date(at.getTime() + 301_000) })).toEqual({ ok: false, reason: 'timestamp_too_old' });
    expect(no({ now: new Date(at.getTime() - 301_000) })).toEqual({ ok: false, reason: 'timestamp_too_new' });
    expect(no({ now: new Date(at.getTime() + 299_000) }).ok).toBe(true);
    expect(no({ now: new Date(at.getTime() + 60_000), toleranceSeconds: 30 })).toEqual({
      ok: false,
      reason: 'timestamp_too_old',
    });
    expect(no({ headers: { 'webhook-id': vector.msgId, 'webhook-timestamp': String(vector.timestamp) } })).toEqual({
      ok: false,
      reason: 'missing_headers',
    });
    expect(no({ headers: { ...headers, 'webhook-timestamp': '1614265330abc' } })).toEqual({
      ok: false,
      reason: 'invalid_timestamp',
    });
    expect(no({ headers: { ...headers, 'webhook-signature': 'v1,' } })).toEqual({
      ok: false,
      reason: 'no_matching_signature',
    });
    expect(no({ headers: { ...headers, 'webhook-signature': vector.signature.replace('v1,', 'v2,') } })).toEqual({
      ok: false,
      reason: 'no_matching_signature',
    });
    // Several signatures (secret rotation, other schemes): any v1 match is enough.
    const rotated = `v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v1a,abcd ${vector.signature}`;
    expect(no({ headers: { ...headers, 'webhook-signature': rotated } }).ok).toBe(true);
  });

  it('builds headers with one signature per secret, verifiable by either secret', () => {
    const current = generateSigningSecret();
    const old = generateSigningSecret();
    const body = '{"event":"registered","clickid":"abc"}';
    const built = buildSignatureHeaders({ secret: [current, old], msgId: 'msg_1', timestamp: 1_700_000_000, body });
    expect(built['webhook-id']).toBe('msg_1');
    expect(built['webhook-timestamp']).toBe('1700000000');
    expect(built['webhook-signature'].split(' ')).toHaveLength(2);
    const now = new Date(1_700_000_000_000);
    expect(verifySignature({ secret: current, headers: built, body, now }).ok).toBe(true);
    expect(verifySignature({ secret: old, headers: built, body, now }).ok).toBe(true);
  });

  it('generates whsec_ secrets of 24 random bytes and refuses malformed ones', () => {
    const secret = generateSigningSecret();
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{32}$/);
    expect(Buffer.from(secret.slice(6), 'base64')).toHaveLength(24);
    expect(generateSigningSecret()).not.toBe(secret);
    const sign = (s: string) => signPayload({ secret: s, msgId: 'msg_1', timestamp: 1, body: '' });
    expect(() => sign('whsec_')).toThrow(/secret/);
    expect(() => sign('whsec_not base64!')).toThrow(/secret/);
    expect(() => sign(`whsec_${Buffer.alloc(8).toString('base64')}`)).toThrow(/24 to 64 bytes/);
    expect(() => signPayload({ secret, msgId: 'msg.1', timestamp: 1, body: '' })).toThrow(/msgId/);
    expect(() => signPayload({ secret, msgId: 'msg_1', timestamp: 1.5, body: '' })).toThrow(/timestamp/);
  });
});

describe('target guard: addresses', () => {
  it('classifies non-public addresses', () => {
    const cases: Array<[string, string | null]> = [
      ['127.0.0.1', 'loopback'],
      ['127.255.255.254', 'loopback'],
      ['10.0.0.1', 'private'],
      ['172.16.0.1', 'private'],
      ['172.31.255.255', 'private'],
      ['192.168.1.1', 'private'],
      ['169.254.169.254', 'link-local'],
      ['100.64.0.1', 'carrier-grade-nat'],
      ['100.127.255.255', 'carrier-grade-nat'],
      ['0.0.0.0', 'unspecified'],
      ['0.1.2.3', 'unspecified'],
      ['224.0.0.1', 'multicast'],
      ['239.255.255.250', 'multicast'],
      ['255.255.255.255', 'broadcast'],
      ['240.0.0.1', 'reserved'],
      ['198.18.0.1', 'reserved'],
      ['192.0.2.1', 'documentation'],
      ['::1', 'loopback'],
      ['[::1]', 'loopback'],
      ['::', 'unspecified'],
      ['fe80::1', 'link-local'],
      ['fe80::1%eth0', 'link-local'],
      ['fc00::1', 'unique-local'],
      ['fd12:3456::1', 'unique-local'],
      ['ff02::1', 'multicast'],
      ['2001:db8::1', 'documentation'],
      ['::ffff:127.0.0.1', 'loopback'],
      ['::ffff:7f00:1', 'loopback'],
      ['::ffff:10.1.2.3', 'private'],
      ['::ffff:169.254.169.254', 'link-local'],
      ['64:ff9b::10.0.0.1', 'private'],
      ['64:ff9b::127.0.0.1', 'loopback'],
      ['2002:7f00:1::1', 'loopback'], // 6to4 around 127.0.0.1
      ['::127.0.0.1', 'reserved'], // IPv4-compatible (deprecated), not IPv4-mapped
      ['::8.8.8.8', 'reserved'],
      ['[::ffff:127.0.0.1]', 'loopback'],
      ['2130706433', 'loopback'],
      ['0x7f.1', 'loopback'],
      ['127.1', 'loopback'],
      ['0177.0.0.1', 'loopback'],
      ['not an ip', 'invalid'],
      ['8.8.8.8', null],
      ['1.1.1.1', null],
      ['172.32.0.1', null],
      ['100.128.0.1', null],
      ['2606:4700:4700::1111', null],
      ['::ffff:8.8.8.8', null],
      ['64:ff9b::8.8.8.8', null],
    ];
    for (const [ip, reason] of cases) expect(classifyAddress(ip), ip).toBe(reason);
  });

  it('allows listed ranges (OUTBOUND_ALLOW_CIDRS), IPv4-mapped spellings included', () => {
    expect(isAllowed('8.8.8.8', [])).toBe(true);
    expect(isAllowed('10.1.2.3', [])).toBe(false);
    expect(isAllowed('10.1.2.3', ['10.0.0.0/8'])).toBe(true);
    expect(isAllowed('::ffff:10.1.2.3', ['10.0.0.0/8'])).toBe(true);
    expect(isAllowed('10.1.2.3', ['::ffff:10.0.0.0/104'])).toBe(true);
    expect(isAllowed('11.0.0.1', ['10.0.0.0/8'])).toBe(true); // public anyway
    expect(isAllowed('192.168.0.1', ['10.0.0.0/8'])).toBe(false);
    expect(isAllowed('127.0.0.1', LOOPBACK_ALLOWED)).toBe(true);
    expect(isAllowed('::1', LOOPBACK_ALLOWED)).toBe(true);
    expect(isAllowed('fd00::5', ['fd00::/8'])).toBe(true);
    expect(isAllowed('169.254.169.254', ['169.254.169.253'])).toBe(false);
    expect(isAllowed('169.254.169.254', ['169.254.169.254'])).toBe(true);
    expect(checkAddress('169.254.169.254', ['10.0.0.0/8'])).toEqual({ allowed: false, reason: 'link-local' });
    expect(() => isAllowed('10.0.0.1', ['10/8'])).toThrow(/10\/8/);
    expect(() => isAllowed('10.0.0.1', ['nonsense'])).toThrow(TypeError);
  });
});

describe('target guard: connector', () => {
  it('connects to the checked address, with the original name as TLS servername', async () => {
    const calls: buildConnector.Options[] = [];
    const lookups: string[] = [];
    const connector = createGuardedConnector({
      lookup: async (host) => {
        lookups.push(host);
        return [{ address: '93.184.215.14', family: 4 }];
      },
      connector: (options, callback) => {
        calls.push(options);
        callback(new Error('stop here'), null);
      },
    });
    const connect = (options: buildConnector.Options) =>
      new Promise<Error | null>((resolve) => connector(options, (...args) => resolve(args[0])));

    expect(
      (await connect({ hostname: 'hooks.example', host: 'hooks.example', protocol: 'https:', port: '' }))?.message,
    ).toBe('stop here');
    expect(lookups).toEqual(['hooks.example']);
    expect(calls[0]).toMatchObject({ hostname: '93.184.215.14', servername: 'hooks.example', protocol: 'https:' });

    await connect({ hostname: '1.1.1.1', host: '1.1.1.1', protocol: 'https:', port: '' });
    expect(lookups).toHaveLength(1); // a literal is not looked up
    expect(calls[1]).toMatchObject({ hostname: '1.1.1.1' });
    expect(calls[1]?.servername).toBeUndefined();
  });

  it('refuses a name when any of its addresses is not allowed, naming host, address and reason', async () => {
    let connected = 0;
    const connector = createGuardedConnector({
      lookup: async () => [
        { address: '93.184.215.14', family: 4 },
        { address: '10.0.0.7', family: 4 },
      ],
      connector: (_options, callback) => {
        connected += 1;
        callback(new Error('should not connect'), null);
      },
    });
    const error = await new Promise<Error | null>((resolve) =>
      connector({ hostname: 'mixed.example', host: 'mixed.example', protocol: 'http:', port: '' }, (...args) =>
        resolve(args[0]),
      ),
    );
    expect(error).toBeInstanceOf(TargetRefusedError);
    expect(error?.message).toContain('mixed.example');
    expect(error?.message).toContain('10.0.0.7');
    expect(error?.message).toContain('private');
    expect(error).toMatchObject({ host: 'mixed.example', address: '10.0.0.7', reason: 'private' });
    expect(connected).toBe(0);
  });

  it('tries the next address when one cannot be reached', async () => {
    const tried: string[] = [];
    const connector = createGuardedConnector({
      lookup: async () => [
        { address: '2606:4700::1', family: 6 },
        { address: '93.184.215.14', family: 4 },
      ],
      connector: (options, callback) => {
        tried.push(options.hostname);
        const error = Object.assign(new Error('unreachable'), { code: 'ENETUNREACH' });
        callback(error, null);
      },
    });
    const error = await new Promise<Error | null>((resolve) =>
      connector({ hostname: 'dual.example', host: 'dual.example', protocol: 'http:', port: '' }, (...args) =>
        resolve(args[0]),
      ),
    );
    expect(tried).toEqual(['2606:4700::1', '93.184.215.14']);
    expect(error?.message).toBe('unreachable');
  });
});

describe('attemptDelivery', () => {
  let server: TestServer;
  let open: Agent;
  let behaviour: (req: http.IncomingMessage, res: http.ServerResponse) => void = (_req, res) => res.end('ok');

  beforeAll(async () => {
    server = await startServer((req, res) => behaviour(req, res));
    open = agent({ allowCidrs: LOOPBACK_ALLOWED });
  });
  afterAll(async () => {
    await server.close();
  });

  const deliver = (path: string, extra: Partial<Parameters<typeof attemptDelivery>[0]> = {}) =>
    attemptDelivery({
      agent: open,
      method: 'POST',
      url: `${server.url}${path}`,
      headers: { 'content-type': 'application/json' },
      body: '{"a":1}',
      ...extra,
    });

  it('delivers: 2xx is success, with the request as given and an excerpt of the answer', async () => {
    behaviour = (_req, res) => res.writeHead(202, { 'content-type': 'text/plain' }).end('accepted');
    const before = server.requests.length;
    const result = await deliver('/hook?x=1', {
      headers: { 'content-type': 'application/json', 'webhook-id': 'msg_1' },
    });
    expect(result).toMatchObject({
      status: 202,
      excerpt: 'accepted',
      retryAfter: null,
      truncated: false,
      bytesRead: 8,
    });
    expect(result.error).toBeUndefined();
    expect(result.errorKind).toBeUndefined();
    expect(result.durationMs).toBeGreaterThan(0);
    expect(classifyOutcome({ status: result.status, error: result.errorKind })).toBe('success');
    const seen = server.requests[before] as Received;
    expect(seen).toMatchObject({ method: 'POST', url: '/hook?x=1', body: '{"a":1}' });
    expect(seen.headers['webhook-id']).toBe('msg_1');
    expect(seen.headers['content-type']).toBe('application/json');
  });

  it('503 retries, 400 fails for good', async () => {
    behaviour = (_req, res) => res.writeHead(503).end('down');
    const unavailable = await deliver('/');
    expect(unavailable).toMatchObject({ status: 503, excerpt: 'down' });
    expect(classifyOutcome({ status: unavailable.status, error: unavailable.errorKind })).toBe('retry');

    behaviour = (_req, res) => res.writeHead(400).end('bad');
    const bad = await deliver('/');
    expect(bad.status).toBe(400);
    expect(classifyOutcome({ status: bad.status, error: bad.errorKind })).toBe('final');
  });

  it('429 with Retry-After in seconds and as an HTTP-date', async () => {
    behaviour = (_req, res) => res.writeHead(429, { 'retry-after': '7' }).end();
    const seconds = await deliver('/');
    expect(seconds).toMatchObject({ status: 429, retryAfter: '7', excerpt: '' });
    expect(classifyOutcome({ status: seconds.status, error: seconds.errorKind })).toBe('retry');
    expect(
      nextAttemptDelayMs({ attempt: 1, retryAfterHeader: seconds.retryAfter, random: () => 0.5, now: new Date() }),
    ).toBe(7_000);

    const now = new Date(Math.floor(Date.now() / 1000) * 1000);
    const date = new Date(now.getTime() + 90_000).toUTCString();
    behaviour = (_req, res) => res.writeHead(429, { 'retry-after': date }).end();
    const dated = await deliver('/');
    expect(dated.retryAfter).toBe(date);
    expect(nextAttemptDelayMs({ attempt: 3, retryAfterHeader: dated.retryAfter, random: () => 0.5, now })).toBe(90_000);
  });

  it('does not follow a redirect', async () => {
    behaviour = (req, res) =>
      req.url === '/moved' ? res.writeHead(301, { location: `${server.url}/new` }).end() : res.end('followed!');
    const before = server.requests.length;
    const result = await deliver('/moved');
    expect(result).toMatchObject({ status: 301, errorKind: 'redirect' });
    expect(result.error).toContain(`${server.url}/new`);
    expect(server.requests.length - before).toBe(1);
    expect(classifyOutcome({ status: result.status, error: result.errorKind })).toBe('retry');
  });

  it('gives up at the total deadline when the server never answers', async () => {
    const silent = await startServer(() => undefined);
    try {
      const result = await attemptDelivery({
        agent: open,
        method: 'POST',
        url: `${silent.url}/`,
        body: 'x',
        totalTimeoutMs: 300,
      });
      expect(result.errorKind).toBe('timeout');
      expect(result.status).toBeUndefined();
      expect(result.durationMs).toBeGreaterThanOrEqual(250);
      expect(result.durationMs).toBeLessThan(1_500);
      expect(classifyOutcome({ status: result.status, error: result.errorKind })).toBe('retry');

      // undici's own headers timeout, shorter than the deadline, is a timeout too.
      const headers = await attemptDelivery({
        agent: open,
        method: 'GET',
        url: `${silent.url}/`,
        totalTimeoutMs: 10_000,
        headersTimeoutMs: 200,
      });
      expect(headers.errorKind).toBe('timeout');
      expect(headers.durationMs).toBeLessThan(2_000);
    } finally {
      await silent.close();
    }
  });

  it('a body that stalls after the headers ends at the deadline; the status still decides', async () => {
    behaviour = (_req, res) => {
      res.writeHead(200);
      res.write('partial');
    };
    const result = await deliver('/', { totalTimeoutMs: 300 });
    expect(result.status).toBe(200);
    expect(result.errorKind).toBeUndefined();
    expect(result.bodyError).toMatch(/deadline/);
    expect(result.excerpt).toBe('partial');
    expect(result.durationMs).toBeLessThan(1_500);
    expect(classifyOutcome({ status: result.status, error: result.errorKind })).toBe('success');
  });

  it('an attempt that waits for a connection past its deadline ends then and is never sent', async () => {
    let release: () => void = () => undefined;
    behaviour = (req, res) => {
      if (req.url === '/held') release = () => res.end('late');
      else res.end('ok');
    };
    const single = agent({ allowCidrs: LOOPBACK_ALLOWED, agentOptions: { connections: 1 } });
    const before = server.requests.length;
    const held = attemptDelivery({ agent: single, method: 'GET', url: `${server.url}/held`, totalTimeoutMs: 5_000 });
    const queued = await attemptDelivery({
      agent: single,
      method: 'GET',
      url: `${server.url}/queued`,
      totalTimeoutMs: 300,
    });
    expect(queued.errorKind).toBe('timeout');
    expect(queued.status).toBeUndefined();
    expect(queued.durationMs).toBeGreaterThanOrEqual(250);
    expect(queued.durationMs).toBeLessThan(1_500);
    // The one connection comes free: the attempt that gave up is not sent on it. A request made
    // after it queues behind anything still waiting for that connection, so once it is answered,
    // whatever was still queued would have been sent first.
    release();
    expect((await held).status).toBe(200);
    expect(
      (await attemptDelivery({ agent: single, method: 'GET', url: `${server.url}/after`, totalTimeoutMs: 5_000 }))
        .status,
    ).toBe(200);
    expect(server.requests.slice(before).map((r) => r.url)).toEqual(['/held', '/after']);
  });

  it('connection refused is a network error', async () => {
    const port = await freePort();
    const result = await attemptDelivery({ agent: open, method: 'GET', url: `http://127.0.0.1:${port}/` });
    expect(result.errorKind).toBe('network');
    expect(result.error).toContain('ECONNREFUSED');
    expect(result.status).toBeUndefined();
    expect(result.excerpt).toBeNull();
    expect(classifyOutcome({ status: result.status, error: result.errorKind })).toBe('retry');
  });

  it('reads only 64 KiB of a 1 MB answer and keeps 2 KiB', async () => {
    let serverSocketClosed: Promise<void> = Promise.resolve();
    behaviour = (req, res) => {
      serverSocketClosed = new Promise((resolve) => req.socket.once('close', () => resolve()));
      res.writeHead(200, { 'content-length': String(1024 * 1024) });
      res.end(Buffer.alloc(1024 * 1024, 'a'));
    };
    const result = await deliver('/');
    expect(result.status).toBe(200);
    expect(result.bytesRead).toBe(64 * 1024);
    expect(result.truncated).toBe(true);
    expect(result.excerpt).toBe('a'.repeat(2048));
    await serverSocketClosed; // the client dropped the connection instead of reading on
  });

  it('cuts the excerpt between characters, not inside one', async () => {
    behaviour = (_req, res) => res.end('é'.repeat(2000));
    const result = await deliver('/', { excerptBytes: 2047 });
    expect(result.excerpt).toBe('é'.repeat(1023));
    expect(result.truncated).toBe(false);
    expect(result.bytesRead).toBe(4000);
  });

  it('refuses an invalid request without sending it', async () => {
    const before = server.connections;
    const tooLarge = await deliver('/', { body: 'x'.repeat(MAX_BODY_BYTES + 1) });
    expect(tooLarge.errorKind).toBe('too_large');
    const credentials = await deliver('/', { url: `http://user:pw@127.0.0.1:${server.port}/` });
    expect(credentials.errorKind).toBe('invalid_request');
    const header = await deliver('/', { headers: { 'x-evil': 'a\r\nx-injected: 1' } });
    expect(header.errorKind).toBe('invalid_request');
    for (const result of [tooLarge, credentials, header]) {
      expect(classifyOutcome({ status: result.status, error: result.errorKind })).toBe('final');
    }
    expect(server.connections).toBe(before);
  });

  it('reports a caller abort as aborted', async () => {
    const controller = new AbortController();
    behaviour = () => controller.abort(); // once the request is in, before any answer
    const result = await deliver('/', { signal: controller.signal });
    expect(result.errorKind).toBe('aborted');
    expect(classifyOutcome({ status: result.status, error: result.errorKind })).toBe('retry');
  });
});

describe('attemptDelivery through the guard: refused targets are never connected to', () => {
  let v4: TestServer;
  let v6: TestServer | null = null;
  let guarded: Agent;

  beforeAll(async () => {
    v4 = await startServer((_req, res) => res.end('reached'));
    v6 = await startServer((_req, res) => res.end('reached'), '::1').catch(() => null);
    guarded = agent(); // no allow list
  });
  afterAll(async () => {
    await v4.close();
    await v6?.close();
  });

  it('refuses loopback in every spelling, private and metadata addresses', async () => {
    const port = v4.port;
    const targets: Array<[string, RegExp]> = [
      [`http://127.0.0.1:${port}/`, /127\.0\.0\.1.*loopback/],
      [`http://localhost:${port}/`, /localhost \((127\.0\.0\.1|::1)\).*loopback/],
      [`http://[::1]:${v6?.port ?? port}/`, /::1.*loopback/],
      [`http://2130706433:${port}/`, /127\.0\.0\.1.*loopback/],
      [`http://0x7f.1:${port}/`, /127\.0\.0\.1.*loopback/],
      [`http://127.1:${port}/`, /127\.0\.0\.1.*loopback/],
      [`http://[::ffff:127.0.0.1]:${port}/`, /::ffff:7f00:1.*loopback/],
      [`http://0.0.0.0:${port}/`, /0\.0\.0\.0.*unspecified/],
      ['http://10.0.0.1/', /10\.0\.0\.1.*private/],
      ['http://169.254.169.254/latest/meta-data/', /169\.254\.169\.254.*link-local/],
      ['https://[fd00::1]/', /fd00::1.*unique-local/],
    ];
    for (const [url, message] of targets) {
      const result = await attemptDelivery({ agent: guarded, method: 'POST', url, body: '{}', totalTimeoutMs: 3_000 });
      expect(result.errorKind, url).toBe('refused_target');
      expect(result.error, url).toMatch(message);
      expect(result.status, url).toBeUndefined();
      expect(classifyOutcome({ status: result.status, error: result.errorKind })).toBe('final');
    }
    expect(v4.connections).toBe(0);
    if (v6) expect(v6.connections).toBe(0);
  });

  it('the same targets are reached once their range is allowed (the counting servers work)', async () => {
    const allowed = agent({ allowCidrs: LOOPBACK_ALLOWED });
    for (const url of [
      `http://127.0.0.1:${v4.port}/`,
      `http://localhost:${v4.port}/`,
      `http://[::ffff:127.0.0.1]:${v4.port}/`,
      `http://2130706433:${v4.port}/`,
    ]) {
      const result = await attemptDelivery({ agent: allowed, method: 'GET', url });
      expect(result, url).toMatchObject({ status: 200, excerpt: 'reached' });
    }
    expect(v4.connections).toBeGreaterThan(0);
    if (v6) {
      const result = await attemptDelivery({ agent: allowed, method: 'GET', url: `http://[::1]:${v6.port}/` });
      expect(result.status).toBe(200);
      expect(v6.connections).toBe(1);
    }
  });

  it('resolves at every connect and connects to what it checked (no rebinding window)', async () => {
    const answers = ['93.184.215.14', '127.0.0.1']; // a rebinding resolver: public first, then loopback
    const lookups: string[] = [];
    const dialed: string[] = [];
    const rebinding = agent({
      lookup: async (host) => {
        lookups.push(host);
        return [{ address: answers.shift() ?? '127.0.0.1', family: 4 }];
      },
      // Stands in for the socket: records the address it is asked to dial, and fails.
      connector: (options, callback) => {
        dialed.push(options.hostname);
        callback(Object.assign(new Error(`connect ECONNREFUSED ${options.hostname}`), { code: 'ECONNREFUSED' }), null);
      },
    });
    const url = `http://rebind.test:${v4.port}/`;
    const first = await attemptDelivery({ agent: rebinding, method: 'GET', url });
    expect(first.errorKind).toBe('network');
    expect(dialed).toEqual(['93.184.215.14']);
    const second = await attemptDelivery({ agent: rebinding, method: 'GET', url });
    expect(second.errorKind).toBe('refused_target');
    expect(second.error).toContain('rebind.test (127.0.0.1)');
    expect(dialed).toEqual(['93.184.215.14']); // the loopback answer was never dialed
    expect(lookups).toEqual(['rebind.test', 'rebind.test']);
  });

  it('an allowed name reaches the resolved address with its own Host header', async () => {
    const lookups: string[] = [];
    const named = agent({
      allowCidrs: ['127.0.0.0/8'],
      lookup: async (host) => {
        lookups.push(host);
        return [{ address: '127.0.0.1', family: 4 }];
      },
    });
    const before = v4.requests.length;
    const result = await attemptDelivery({
      agent: named,
      method: 'GET',
      url: `http://hooks.internal.test:${v4.port}/x`,
    });
    expect(result.status).toBe(200);
    expect(lookups).toEqual(['hooks.internal.test']);
    expect(v4.requests[before]?.headers.host).toBe(`hooks.internal.test:${v4.port}`);
  });
});

function makeCertificate(): { key: string; cert: string } | null {
  const dir = mkdtempSync(join(tmpdir(), 'flowpost-tls-'));
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=hooks.test',
        '-addext',
        'subjectAltName=DNS:hooks.test',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    return { key: readFileSync(join(dir, 'key.pem'), 'utf8'), cert: readFileSync(join(dir, 'cert.pem'), 'utf8') };
  } catch {
    return null;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('attemptDelivery over TLS through the guard', () => {
  const certificate = makeCertificate();

  it.skipIf(certificate === null)(
    'verifies the certificate against the URL host while connecting to the checked address',
    async () => {
      const { key, cert } = certificate as { key: string; cert: string };
      const servernames: Array<string | false | null> = [];
      const server = https.createServer({ key, cert }, (req, res) => {
        servernames.push((req.socket as TLSSocket).servername);
        res.end('secure');
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
      const port = (server.address() as net.AddressInfo).port;
      try {
        const tlsAgent = agent({
          allowCidrs: ['127.0.0.0/8'],
          tls: { ca: cert },
          lookup: async () => [{ address: '127.0.0.1', family: 4 }],
        });
        const ok = await attemptDelivery({
          agent: tlsAgent,
          method: 'POST',
          url: `https://hooks.test:${port}/`,
          body: '{}',
        });
        expect(ok).toMatchObject({ status: 200, excerpt: 'secure' });
        expect(servernames).toEqual(['hooks.test']);

        // The literal address does not match the certificate: refused by TLS, a network failure.
        const literal = await attemptDelivery({
          agent: tlsAgent,
          method: 'POST',
          url: `https://127.0.0.1:${port}/`,
          body: '{}',
        });
        expect(literal.errorKind).toBe('network');
        expect(literal.error).toMatch(/altnames|certificate|IP/i);
      } finally {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
    },
  );
});

describe('validateDeliveryRequest', () => {
  const valid = {
    method: 'POST',
    url: 'https://tracker.example/postback?subid=1',
    headers: { 'x-token': 'abc' },
    body: '{}',
  };

  it('accepts a proper request and normalizes the URL', () => {
    const result = validateDeliveryRequest({ ...valid, url: 'HTTPS://Tracker.Example:443/p?q=1#frag', method: 'post' });
    expect(result.ok).toBe(true);
    if (result.ok) {
      expect(result.url.href).toBe('https://tracker.example/p?q=1#frag');
      expect(result.method).toBe('POST');
    }
    expect(validateDeliveryRequest({ method: 'GET', url: 'http://1.2.3.4:8080/x', body: null }).ok).toBe(true);
    expect(validateDeliveryRequest({ ...valid, body: 'x'.repeat(MAX_BODY_BYTES) }).ok).toBe(true);
  });

  it('refuses what cannot be sent', () => {
    const cases: Array<[Partial<DeliveryRequest>, string]> = [
      [{ url: 'not a url' }, 'invalid_url'],
      [{ url: '/relative' }, 'invalid_url'],
      [{ url: 'ftp://example.com/' }, 'unsupported_protocol'],
      [{ url: 'file:///etc/passwd' }, 'unsupported_protocol'],
      [{ url: 'javascript:alert(1)' }, 'unsupported_protocol'],
      [{ url: 'https://user:pass@example.com/' }, 'credentials_in_url'],
      [{ url: 'https://user@example.com/' }, 'credentials_in_url'],
      [{ url: `https://example.com/${'a'.repeat(9000)}` }, 'url_too_long'],
      [{ method: 'TRACE' }, 'invalid_method'],
      [{ method: 'CONNECT' }, 'invalid_method'],
      [{ headers: { 'bad name': 'x' } }, 'invalid_header'],
      [{ headers: { 'x-a': 'line\r\nbreak' } }, 'invalid_header'],
      [{ headers: { 'x-a': 'line\nbreak' } }, 'invalid_header'],
      [{ headers: { 'x-a': 'nul\0' } }, 'invalid_header'],
      [{ headers: { Host: 'internal' } }, 'forbidden_header'],
      [{ headers: { 'Content-Length': '5' } }, 'forbidden_header'],
      [{ headers: { 'transfer-encoding': 'chunked' } }, 'forbidden_header'],
      [{ method: 'GET', body: 'x' }, 'body_not_allowed'],
      [{ body: 'x'.repeat(MAX_BODY_BYTES + 1) }, 'body_too_large'],
      [{ body: 'é'.repeat(MAX_BODY_BYTES / 2 + 1) }, 'body_too_large'],
    ];
    for (const [change, code] of cases) {
      const result = validateDeliveryRequest({ ...valid, ...change });
      expect(result, JSON.stringify(change).slice(0, 100)).toMatchObject({ ok: false, code });
      if (!result.ok) expect(result.reason.length).toBeGreaterThan(0);
    }
    expect(validateDeliveryRequest({ ...valid, headers: { 'x-a': 'tab\tis fine' } }).ok).toBe(true);
  });
});

describe('attemptDelivery never throws', () => {
  it('describes even nonsensical options as a failure', async () => {
    const result = await attemptDelivery({
      agent: agent(),
      method: 'GET',
      url: 'http://127.0.0.1/',
      totalTimeoutMs: -1,
    });
    expect(result.errorKind).toBe('network');
    expect(typeof result.error).toBe('string');
  });
});
