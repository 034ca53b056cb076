import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LoadingCache } from '../../src/util/loading-cache.js';

describe('LoadingCache', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('shares a pending load, keeps the value for its time, then loads again', async () => {
    const cache = new LoadingCache<string, string>(10, (value) => (value === 'none' ? 1_000 : 60_000));
    let loads = 0;
    const load = () => Promise.resolve(`v${++loads}`);
    const [a, b] = await Promise.all([cache.get('k', load), cache.get('k', load)]);
    expect([a, b, loads]).toEqual(['v1', 'v1', 1]);
    vi.advanceTimersByTime(59_000);
    expect(await cache.get('k', load)).toBe('v1');
    vi.advanceTimersByTime(2_000);
    expect(await cache.get('k', load)).toBe('v2');

    expect(await cache.get('missing', () => Promise.resolve('none'))).toBe('none');
    vi.advanceTimersByTime(1_001);
    expect(await cache.get('missing', () => Promise.resolve('found'))).toBe('found');
  });

  it('forgets a failed load at once, and a load deleted while pending is not kept', async () => {
    const cache = new LoadingCache<string, string>(10, () => 60_000);
    await expect(cache.get('k', () => Promise.reject(new Error('down')))).rejects.toThrow('down');
    expect(await cache.get('k', () => Promise.resolve('up'))).toBe('up');

    let release!: (value: string) => void;
    const pending = cache.get('p', () => new Promise<string>((resolve) => (release = resolve)));
    cache.delete('p');
    release('stale');
    expect(await pending).toBe('stale');
    expect(await cache.get('p', () => Promise.resolve('fresh'))).toBe('fresh');
  });

  it('drops the least recently used key beyond its capacity', async () => {
    const cache = new LoadingCache<string, string>(2, () => 60_000);
    let loads = 0;
    const load = () => Promise.resolve(`v${++loads}`);
    await cache.get('a', load);
    await cache.get('b', load);
    await cache.get('a', load);
    await cache.get('c', load);
    expect(await cache.get('a', load)).toBe('v1');
    expect(await cache.get('b', load)).toBe('v4');
  });
});
