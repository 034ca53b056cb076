import { describe, expect, it } from 'vitest';
import { keptCounts, type BroadcastRecord, type RecipientCounts } from '../../src/db/broadcasts.js';
import { progressOf } from '../../src/http/routes/broadcasts.js';

const NONE: RecipientCounts = { pending: 0, sending: 0, sent: 0, blocked: 0, failed: 0, skipped: 0, interrupted: 0 };

function broadcast(overrides: Partial<BroadcastRecord> = {}): BroadcastRecord {
  return {
    id: '0b7f9b6e-4a0e-4d55-9a3e-1f6f0d3c2b11',
    botId: 'bot',
    state: 'running',
    audience: { tags: ['vip'] },
    content: { kind: 'message', text: 'Hi {{name}}', buttons: [] },
    startAt: new Date('2026-01-01T10:00:00.000Z'),
    planned: 10,
    startedAt: new Date('2026-01-01T10:00:00.000Z'),
    finishedAt: null,
    createdAt: new Date('2026-01-01T09:59:00.000Z'),
    finalCounts: null,
    ...overrides,
  };
}

describe('keptCounts', () => {
  it('gives every state, 0 where a done broadcast kept none', () => {
    expect(keptCounts({ sent: 7, blocked: 2 })).toEqual({ ...NONE, sent: 7, blocked: 2 });
    expect(keptCounts({})).toEqual(NONE);
  });
});

describe('progressOf', () => {
  it('shows the counts, what remains, and an end estimated from the pace so far', () => {
    const now = Date.parse('2026-01-01T10:01:00.000Z');
    const progress = progressOf(broadcast(), { ...NONE, pending: 5, sending: 1, sent: 3, failed: 1 }, now);
    expect(progress).toEqual({
      id: '0b7f9b6e-4a0e-4d55-9a3e-1f6f0d3c2b11',
      state: 'running',
      audience: { tags: ['vip'] },
      text: 'Hi {{name}}',
      buttons: [],
      startAt: '2026-01-01T10:00:00.000Z',
      startedAt: '2026-01-01T10:00:00.000Z',
      finishedAt: null,
      createdAt: '2026-01-01T09:59:00.000Z',
      planned: 10,
      sent: 3,
      blocked: 0,
      failed: 1,
      skipped: 0,
      interrupted: 0,
      remaining: 6,
      // 4 handled in 60 s: 6 more take 90 s.
      estimatedEnd: '2026-01-01T10:02:30.000Z',
    });
  });

  it('estimates no end before a recipient is handled, nor for a broadcast not running', () => {
    const now = Date.parse('2026-01-01T10:01:00.000Z');
    expect(progressOf(broadcast(), { ...NONE, pending: 10 }, now).estimatedEnd).toBeNull();
    expect(progressOf(broadcast({ state: 'paused' }), { ...NONE, pending: 5, sent: 5 }, now).estimatedEnd).toBeNull();
  });

  it('shows a step broadcast by its step, and no remaining count before the audience is taken', () => {
    const progress = progressOf(
      broadcast({
        state: 'scheduled',
        planned: null,
        startedAt: null,
        content: { kind: 'step', stepId: 'step-id', stepKey: 'offer' },
      }),
      NONE,
      Date.now(),
    );
    expect(progress).toMatchObject({ stepId: 'step-id', stepKey: 'offer', remaining: null, startedAt: null });
    expect(progress).not.toHaveProperty('text');
  });
});
