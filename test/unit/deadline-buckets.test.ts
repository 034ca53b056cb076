import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DeadlineBuckets } from '../../src/outbound/delivery/deadline-buckets.js';

const member = () => {
  const it = { expiredAt: null as number | null, expire: () => void (it.expiredAt = performance.now()) };
  return it;
};

// The buckets' timers and their slices of time (performance.now) run on the fake clock.
beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('DeadlineBuckets', () => {
  it('expires what is still watched at its deadline, not before, and not what left in time', () => {
    const deadlines = new DeadlineBuckets(20);
    const started = performance.now();
    const [late, done, other] = [member(), member(), member()];
    const bucket = deadlines.watch(late, 60);
    expect(deadlines.watch(done, 60)).toBe(bucket); // the same slice of time shares one bucket
    deadlines.watch(other, 60);
    bucket.leave(done);
    vi.advanceTimersByTime(59);
    expect(late.expiredAt).toBeNull();
    vi.advanceTimersByTime(21); // the deadline, plus at most one slice
    expect(late.expiredAt).not.toBeNull();
    expect(late.expiredAt! - started).toBeGreaterThanOrEqual(60);
    expect(late.expiredAt! - started).toBeLessThanOrEqual(80);
    expect(other.expiredAt).not.toBeNull();
    expect(done.expiredAt).toBeNull();
  });

  it('operations watched in a later slice get a bucket of their own', () => {
    const deadlines = new DeadlineBuckets(20);
    const first = deadlines.watch(member(), 1_000);
    vi.advanceTimersByTime(30);
    const second = deadlines.watch(member(), 1_000);
    expect(second).not.toBe(first);
  });

  it('a bucket whose members all left in time expires no one', () => {
    const deadlines = new DeadlineBuckets(10);
    const only = member();
    deadlines.watch(only, 20).leave(only);
    vi.advanceTimersByTime(60);
    expect(only.expiredAt).toBeNull();
  });

  it('refuses a deadline that is not a positive number', () => {
    expect(() => new DeadlineBuckets().watch(member(), 0)).toThrow(RangeError);
    expect(() => new DeadlineBuckets().watch(member(), Number.NaN)).toThrow(RangeError);
  });

  it('one member failing at its deadline does not keep the others from theirs', () => {
    const deadlines = new DeadlineBuckets(10);
    const failing = {
      expire: () => {
        throw new Error('boom');
      },
    };
    const after = member();
    deadlines.watch(failing, 20);
    deadlines.watch(after, 20);
    vi.advanceTimersByTime(80);
    expect(after.expiredAt).not.toBeNull();
  });

  it("an emptied bucket takes new members of its slice, and a deadline beyond a timer's range does not fire at once", () => {
    const deadlines = new DeadlineBuckets(1_000);
    const first = member();
    const bucket = deadlines.watch(first, 50);
    bucket.leave(first);
    const second = member();
    expect(deadlines.watch(second, 50)).toBe(bucket);
    const far = member();
    deadlines.watch(far, 2 ** 40);
    vi.advanceTimersByTime(50);
    expect(far.expiredAt).toBeNull();
    vi.advanceTimersByTime(10 * 86_400_000);
    expect(far.expiredAt).toBeNull();
  });
});
