import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { startSweepLoop } from '../../src/workers/sweep-loop.js';

describe('startSweepLoop', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('sweeps every interval, counted from the end of the sweep before, until stopped', async () => {
    let sweeps = 0;
    const loop = startSweepLoop({
      intervalMs: 1_000,
      sweep: async () => {
        sweeps += 1;
        await new Promise((resolve) => setTimeout(resolve, 500));
      },
      onError: () => undefined,
    });
    await vi.advanceTimersByTimeAsync(999);
    expect(sweeps).toBe(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(sweeps).toBe(1);
    // The next starts 1 s after this one ended (at 1.5 s): at 2.5 s.
    await vi.advanceTimersByTimeAsync(1_499);
    expect(sweeps).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(sweeps).toBe(2);
    loop.stop();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(sweeps).toBe(2);
  });

  it('shares a sweep under way, and reports a failure without stopping', async () => {
    let sweeps = 0;
    const errors: unknown[] = [];
    const loop = startSweepLoop({
      intervalMs: 1_000,
      sweep: async () => {
        sweeps += 1;
        await Promise.resolve();
        throw new Error(`sweep ${sweeps}`);
      },
      onError: (error) => errors.push(error),
    });
    const first = loop.sweepOnce();
    expect(loop.sweepOnce()).toBe(first);
    await expect(first).resolves.toBeUndefined();
    expect(sweeps).toBe(1);
    expect(errors).toEqual([new Error('sweep 1')]);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(sweeps).toBe(2);
    expect(errors).toHaveLength(2);
    loop.stop();
  });
});
