import { setTimeout as sleep } from 'node:timers/promises';
import { watchApplied, settleCalls } from './lib/applied.js';
import { accepted, startDrive, statusCounts } from './lib/load.js';
import { fmt, hookFigures, journalFigures, seconds, type Scenario } from './lib/report.js';
import { now, startStack } from './lib/stack.js';

const DIALOGS = 300;

/**
 * SIGKILL of worker processes: two workers, one killed every 3–5 s and replaced at once, while
 * postbacks arrive steadily. Every accepted postback must end applied; repeated Send Webhook calls
 * (at-least-once) are counted; and how long a killed worker's work waited before it was taken over.
 */
export const workerKills: Scenario = {
  name: 'worker-kills',
  fault: 'SIGKILL a worker every 3–5 s (2 workers, each replaced)',
  run: async (short) => {
    const rate = short ? 100 : 150;
    const durationMs = short ? 7_000 : 45_000;
    // The short run (CI) hands a dead worker's jobs over sooner, to fit its time budget.
    const lockEnv: Record<string, string> = short ? { QUEUE_LOCK_MS: '5000' } : {};
    const stack = await startStack({ name: 'worker-kills', workers: 2, dialogs: DIALOGS, env: lockEnv });
    try {
      const watch = watchApplied(stack);
      const load = startDrive(stack.base, { rate, durationMs, path: (i) => stack.postback(i, i % DIALOGS) });
      const kills: Array<{ at: number; pending: number[] }> = [];
      let loading = true;
      void load.done.finally(() => (loading = false));
      await sleep(2_000);
      // The short run kills once.
      while (loading && (!short || kills.length === 0)) {
        const victim = stack.workers.filter((w) => w.process.exitCode === null && w.process.signalCode === null)[0];
        if (victim) {
          const at = now();
          // What the workers held or had yet to take: accepted before the kill, not yet seen applied.
          const pending = load.sent.filter((s) => accepted(s) && s.doneAt < at && !watch.appliedAt.has(s.i));
          await victim.kill();
          kills.push({ at, pending: pending.map((s) => s.i) });
          stack.workers.splice(stack.workers.indexOf(victim), 1);
          stack.startWorker();
        }
        await sleep(3_000 + Math.random() * 2_000);
      }
      const sent = await load.done;
      const acceptedNs = sent.filter(accepted).map((s) => s.i);
      const lost = await watch.waitFor(acceptedNs, short ? 30_000 : 90_000);
      await settleCalls(stack, 3_000, 60_000);
      await watch.stop();
      const journal = await journalFigures(stack);

      const resumes = kills.map(({ at, pending }) =>
        Math.max(0, ...pending.map((n) => (watch.appliedAt.get(n) ?? Number.POSITIVE_INFINITY) - at)),
      );
      const maxResume = Math.max(0, ...resumes);
      const hooks = hookFigures(stack.target.calls);
      const failures: string[] = [];
      if (lost.length > 0)
        failures.push(`${lost.length} accepted postbacks never applied (n = ${lost.slice(0, 10).join(', ')}…)`);
      failures.push(...journal.failures);
      const unanswered = sent.filter((s) => s.status === 0 || s.status >= 500).length;
      if (unanswered > 0) failures.push(`${unanswered} postbacks answered 5xx or not at all (${statusCounts(sent)})`);
      return {
        name: 'worker-kills',
        summary: `${kills.length} kills; ${fmt(lost.length)} of ${fmt(acceptedNs.length)} accepted lost; resume ≤ ${seconds(maxResume)}; ${fmt(hooks.repeated)} repeated Send Webhook calls`,
        figures: [
          [
            'load',
            `${rate}/s for ${seconds(durationMs)}, 2 worker processes${short ? ', QUEUE_LOCK_MS=5000' : ', default QUEUE_LOCK_MS'}`,
          ],
          ['answers', statusCounts(sent)],
          ['workers killed (SIGKILL) and replaced', String(kills.length)],
          ['accepted postbacks not applied', `${fmt(lost.length)} of ${fmt(acceptedNs.length)}`],
          [
            'kill → the work it held applied',
            `max ${seconds(maxResume)} (each kill: ${resumes.map((r) => (r / 1000).toFixed(1)).join(', ')} s)`,
          ],
          ['Send Webhook calls', `${fmt(hooks.calls)} (${fmt(hooks.distinct)} distinct webhook-ids)`],
          ['repeated Send Webhook calls (same webhook-id again)', fmt(hooks.repeated)],
          ...journal.figures,
        ],
        failures,
      };
    } finally {
      await stack.close();
    }
  },
};
