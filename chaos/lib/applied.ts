import { setTimeout as sleep } from 'node:timers/promises';
import { now, type Stack } from './stack.js';

/** When each postback's trace (its tag) was first seen in Postgres, polled every `intervalMs`. */
export interface AppliedWatch {
  appliedAt: Map<number, number>;
  /** Resolves once every n is applied, or at the timeout; returns those still missing. */
  waitFor(ns: readonly number[], timeoutMs: number): Promise<number[]>;
  stop(): Promise<void>;
}

export function watchApplied(stack: Stack, intervalMs = 250): AppliedWatch {
  const appliedAt = new Map<number, number>();
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        const applied = await stack.appliedNumbers();
        const at = now();
        for (const n of applied) if (!appliedAt.has(n)) appliedAt.set(n, at);
      } catch {
        // Postgres is down (a scenario stopped it): look again at the next tick.
      }
      await sleep(intervalMs);
    }
  })();
  return {
    appliedAt,
    waitFor: async (ns, timeoutMs) => {
      const deadline = now() + timeoutMs;
      for (;;) {
        const missing = ns.filter((n) => !appliedAt.has(n));
        if (missing.length === 0 || now() > deadline) return missing;
        await sleep(intervalMs);
      }
    },
    stop: async () => {
      running = false;
      await loop;
    },
  };
}

/** Waits until the Send Webhook target has had no new call for `quietMs` (at most `timeoutMs`). */
export async function settleCalls(stack: Stack, quietMs: number, timeoutMs: number): Promise<void> {
  const deadline = now() + timeoutMs;
  let count = -1;
  let since = now();
  while (now() < deadline) {
    if (stack.target.calls.length !== count) {
      count = stack.target.calls.length;
      since = now();
    } else if (now() - since >= quietMs) return;
    await sleep(100);
  }
}
