import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { HostCircuit, HostPace, LocalHostLimiter, hostKey } from '../../src/outbound/fairness/index.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

// Two connections stand in for two worker processes.
let a: Redis;
let b: Redis;
let prefix: string;

beforeAll(() => {
  a = new Redis(REDIS_URL);
  b = new Redis(REDIS_URL);
});
afterAll(async () => {
  await a?.quit();
  await b?.quit();
});

const prefixes: string[] = [];
function newPrefix(): string {
  prefix = `test:fairness:${randomUUID()}`;
  prefixes.push(prefix);
  return prefix;
}

async function keysUnder(p: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await a.scan(cursor, 'MATCH', `${p}:*`, 'COUNT', 1000);
    cursor = next;
    found.push(...batch);
  } while (cursor !== '0');
  return found;
}

afterEach(async () => {
  for (const p of prefixes.splice(0)) {
    const keys = await keysUnder(p);
    if (keys.length > 0) await a.del(...keys);
    expect(await keysUnder(p)).toEqual([]);
  }
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function redisNowMs(): Promise<number> {
  const [seconds, micros] = await a.time();
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
}

describe('hostKey', () => {
  it('is lower-case hostname:port with default ports filled in', () => {
    expect(hostKey(new URL('https://Tracker.Example.COM/postback?x=1'))).toBe('tracker.example.com:443');
    expect(hostKey(new URL('http://tracker.example.com/'))).toBe('tracker.example.com:80');
    expect(hostKey(new URL('http://tracker.example.com:8080/'))).toBe('tracker.example.com:8080');
    expect(hostKey(new URL('https://tracker.example.com:443/'))).toBe('tracker.example.com:443');
    expect(hostKey(new URL('http://user:pw@tracker.example.com./a'))).toBe('tracker.example.com:80');
  });

  it('keeps IPv6 literals in brackets and normalises IPv4', () => {
    expect(hostKey(new URL('http://[2001:DB8::1]:8443/x'))).toBe('[2001:db8::1]:8443');
    expect(hostKey(new URL('https://[::1]/'))).toBe('[::1]:443');
    expect(hostKey(new URL('http://0x7f.1/'))).toBe('127.0.0.1:80');
  });

  it('refuses a scheme without a default port', () => {
    expect(() => hostKey(new URL('foo://example.com/'))).toThrow(RangeError);
    expect(hostKey(new URL('foo://Example.COM:21/'))).toBe('example.com:21');
  });
});

describe('LocalHostLimiter', () => {
  it('caps in-flight work per host within the process', () => {
    const limiter = new LocalHostLimiter(2);
    expect(limiter.tryAcquire('x:443')).toBe(true);
    expect(limiter.tryAcquire('x:443')).toBe(true);
    expect(limiter.tryAcquire('x:443')).toBe(false);
    expect(limiter.tryAcquire('y:443')).toBe(true);
    limiter.release('x:443');
    expect(limiter.inUse('x:443')).toBe(1);
    expect(limiter.tryAcquire('x:443')).toBe(true);
    limiter.release('y:443');
    limiter.release('y:443'); // extra release is ignored
    expect(limiter.inUse('y:443')).toBe(0);
    expect(() => new LocalHostLimiter(0)).toThrow(RangeError);
  });
  it('lets a waiter take the next slot given back, in order, or sends it away after its wait', async () => {
    const limiter = new LocalHostLimiter(1);
    expect(limiter.acquire('x:443', 5_000)).toBe(true);
    const first = limiter.acquire('x:443', 5_000);
    const second = limiter.acquire('x:443', 5_000);
    const late = limiter.acquire('x:443', 150);
    expect(first).toBeInstanceOf(Promise);
    limiter.release('x:443');
    expect(await first).toBe(true);
    expect(limiter.inUse('x:443')).toBe(1);
    expect(await late).toBe(false);
    limiter.release('x:443');
    expect(await second).toBe(true);
    limiter.release('x:443');
    expect(limiter.inUse('x:443')).toBe(0);
    expect(limiter.isFull('x:443')).toBe(false);
  });
});

describe('HostPace', () => {
  it('learns which hosts are slow and stretches their waits, within a minute', () => {
    const pace = new HostPace(1_000);
    const half = () => 0.5;
    expect(pace.isSlow('slow:443')).toBe(false);
    expect(pace.busyDelayMs('slow:443', half)).toBe(1_250);
    for (let i = 0; i < 20; i++) pace.observe('slow:443', 5_000);
    pace.observe('fast:443', 4);
    expect(pace.isSlow('slow:443')).toBe(true);
    expect(pace.isSlow('fast:443')).toBe(false);
    expect(pace.busyDelayMs('fast:443', half)).toBe(1_250);
    expect(pace.busyDelayMs('slow:443', half)).toBeGreaterThan(10_000);
    for (let i = 0; i < 20; i++) pace.observe('slow:443', 600_000);
    expect(pace.busyDelayMs('slow:443', half)).toBe(60_000);
  });
});

describe('HostCircuit', () => {
  const host = 'tracker.example:443';

  it('opens after minFailures failures within the window', async () => {
    const circuit = new HostCircuit(a, { prefix: newPrefix(), failureWindowMs: 10_000, minFailures: 5, openMs: 1_000 });
    for (let i = 0; i < 4; i++) expect((await circuit.recordFailure(host)).state).toBe('closed');
    expect((await circuit.state(host)).state).toBe('closed');
    const before = await redisNowMs();
    const opened = await circuit.recordFailure(host);
    expect(opened.state).toBe('open');
    expect(opened.retryAtMs! - before).toBeGreaterThanOrEqual(900);
    expect(opened.retryAtMs! - before).toBeLessThanOrEqual(1_100);

    // Another process sees it open, with the same retry time; further failures do not extend it.
    const other = new HostCircuit(b, { prefix, failureWindowMs: 10_000, minFailures: 5, openMs: 1_000 });
    expect(await other.state(host)).toEqual(opened);
    expect(await other.recordFailure(host)).toEqual(opened);
    expect(await circuit.state('other.example:443')).toEqual({ state: 'closed' });
  });

  it('stays closed when a success came in between, and forgets failures older than the window', async () => {
    const circuit = new HostCircuit(a, { prefix: newPrefix(), failureWindowMs: 300, minFailures: 5, openMs: 1_000 });
    for (let i = 0; i < 3; i++) await circuit.recordFailure(host);
    await circuit.recordSuccess(host);
    for (let i = 0; i < 4; i++) expect((await circuit.recordFailure(host)).state).toBe('closed');
    expect((await circuit.state(host)).state).toBe('closed');

    await sleep(350); // those 4 are now outside the window
    for (let i = 0; i < 4; i++) expect((await circuit.recordFailure(host)).state).toBe('closed');
    expect((await circuit.recordFailure(host)).state).toBe('open');
  });

  it('lets exactly one probe through out of many concurrent callers; its success closes', async () => {
    const options = { prefix: newPrefix(), failureWindowMs: 10_000, minFailures: 3, openMs: 200, probeLeaseMs: 5_000 };
    const circuitA = new HostCircuit(a, options);
    const circuitB = new HostCircuit(b, options);
    for (let i = 0; i < 3; i++) await circuitA.recordFailure(host);
    expect((await circuitB.state(host)).state).toBe('open');

    await sleep(250);
    const answers = await Promise.all(
      Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? circuitA : circuitB).state(host)),
    );
    expect(answers.filter((s) => s.state === 'half_open')).toHaveLength(1);
    const waiting = answers.filter((s) => s.state === 'open');
    expect(waiting).toHaveLength(39);
    // Losers are told to come back once the probe lease is over at the latest.
    const now = await redisNowMs();
    for (const s of waiting) {
      expect(s.retryAtMs - now).toBeGreaterThan(4_000);
      expect(s.retryAtMs - now).toBeLessThanOrEqual(5_000);
    }

    await circuitB.recordSuccess(host);
    expect(await circuitA.state(host)).toEqual({ state: 'closed' });
    expect(await keysUnder(options.prefix)).toEqual([]);
  });

  it('re-opens with a doubled pause when the probe fails, capped at maxOpenMs', async () => {
    const options = { prefix: newPrefix(), failureWindowMs: 10_000, minFailures: 2, openMs: 150, maxOpenMs: 400 };
    const circuit = new HostCircuit(a, options);
    await circuit.recordFailure(host);
    expect((await circuit.recordFailure(host)).state).toBe('open');

    const expectPause = async (pauseMs: number) => {
      await sleep(pauseMs / 2);
      expect((await circuit.state(host)).state).toBe('open'); // still in the pause
      await sleep(pauseMs / 2 + 40);
      expect((await circuit.state(host)).state).toBe('half_open'); // the probe
      const before = await redisNowMs();
      const reopened = await circuit.recordFailure(host); // the probe failed
      return { reopened, before };
    };

    let { reopened, before } = await expectPause(150);
    expect(reopened.state).toBe('open');
    expect(reopened.retryAtMs! - before).toBeGreaterThanOrEqual(280);
    expect(reopened.retryAtMs! - before).toBeLessThanOrEqual(350);
    expect(await circuit.state(host)).toEqual(reopened); // no second probe meanwhile

    ({ reopened, before } = await expectPause(300));
    expect(reopened.retryAtMs! - before).toBeGreaterThanOrEqual(390); // 600, capped at 400
    expect(reopened.retryAtMs! - before).toBeLessThanOrEqual(450);

    ({ reopened, before } = await expectPause(400));
    expect(reopened.retryAtMs! - before).toBeLessThanOrEqual(450); // stays at the cap

    // The host answers again: one success closes it, and the next opening starts at openMs again.
    await sleep(440);
    expect((await circuit.state(host)).state).toBe('half_open');
    await circuit.recordSuccess(host);
    expect(await circuit.state(host)).toEqual({ state: 'closed' });
    await circuit.recordFailure(host);
    const fresh = await circuit.recordFailure(host);
    const now = await redisNowMs();
    expect(fresh.retryAtMs! - now).toBeLessThanOrEqual(150);
  });

  it('frees the probe after probeLeaseMs when the prober never reports', async () => {
    // A lease long enough that B looks within it however busy the machine is.
    const options = { prefix: newPrefix(), minFailures: 1, openMs: 100, probeLeaseMs: 1_500 };
    const circuitA = new HostCircuit(a, options);
    const circuitB = new HostCircuit(b, options);
    await circuitA.recordFailure(host);
    await sleep(130);
    expect((await circuitA.state(host)).state).toBe('half_open'); // then "crashes"
    expect((await circuitB.state(host)).state).toBe('open');
    await sleep(1_600);
    expect((await circuitB.state(host)).state).toBe('half_open');
  });

  it('rejects nonsense options', () => {
    expect(() => new HostCircuit(a, { prefix: 'x', openMs: 1_000, maxOpenMs: 500 })).toThrow(RangeError);
    expect(() => new HostCircuit(a, { prefix: 'x', minFailures: 0 })).toThrow(RangeError);
  });
});
