export interface SweepLoop {
  /** Sweeps now; a sweep already under way is shared, not run twice. Never rejects. */
  sweepOnce: () => Promise<void>;
  /** No sweep is scheduled any more (one under way finishes). */
  stop: () => void;
}

/**
 * Runs `sweep` every `intervalMs` (counted from the end of the one before), one at a time; a
 * failure goes to `onError` and the loop goes on.
 */
export function startSweepLoop(options: {
  intervalMs: number;
  sweep: () => Promise<void>;
  onError: (error: unknown) => void;
}): SweepLoop {
  let timer: NodeJS.Timeout | null = null;
  let stopped = false;
  let running: Promise<void> | null = null;
  const sweepOnce = (): Promise<void> => {
    running ??= options
      .sweep()
      .catch((error: unknown) => {
        options.onError(error);
      })
      .finally(() => {
        running = null;
      });
    return running;
  };
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => void sweepOnce().finally(schedule), options.intervalMs);
    timer.unref();
  };
  schedule();
  return {
    sweepOnce,
    stop: () => {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}
