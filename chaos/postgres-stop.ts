import { setTimeout as sleep } from 'node:timers/promises';
import { settleCalls, watchApplied } from './lib/applied.js';
import { accepted, startDrive, statusCounts } from './lib/load.js';
import { fmt, journalFigures, latencies, millis, seconds, type Scenario } from './lib/report.js';
import { now, startStack } from './lib/stack.js';

const DIALOGS = 300;

/**
 * Postgres stopped (pg_ctl stop -m fast) for 10 s, then started, under steady postbacks: every
 * accepted postback must end applied; what the web tier answered meanwhile, and the slowest time
 * from a 2xx to the update in Postgres.
 */
export const postgresStop: Scenario = {
  name: 'postgres-stop',
  fault: 'Postgres stopped (pg_ctl stop -m fast), then started',
  run: async (short) => {
    const rate = short ? 100 : 150;
    const durationMs = short ? 8_000 : 30_000;
    const downMs = short ? 3_000 : 10_000;
    const stack = await startStack({ name: 'postgres-stop', workers: 2, dialogs: DIALOGS });
    try {
      const watch = watchApplied(stack);
      const load = startDrive(stack.base, { rate, durationMs, path: (i) => stack.postback(i, i % DIALOGS) });
      await sleep(short ? 2_000 : 8_000);
      const stopAt = now();
      await stack.postgres.stop();
      const downAt = now();
      await sleep(Math.max(0, downMs - (downAt - stopAt)));
      await stack.postgres.start();
      const upAt = now();
      const sent = await load.done;
      const acceptedSent = sent.filter(accepted);
      const lost = await watch.waitFor(
        acceptedSent.map((s) => s.i),
        short ? 30_000 : 60_000,
      );
      await settleCalls(stack, 2_000, 30_000);
      await watch.stop();
      const journal = await journalFigures(stack);

      const during = sent.filter((s) => s.sentAt >= stopAt && s.sentAt < upAt);
      const toApplied = acceptedSent
        .filter((s) => watch.appliedAt.has(s.i))
        .map((s) => watch.appliedAt.get(s.i)! - s.doneAt);
      const lastApplied = Math.max(...acceptedSent.map((s) => watch.appliedAt.get(s.i) ?? Number.NaN));
      const failures: string[] = [...journal.failures];
      if (lost.length > 0)
        failures.push(`${lost.length} accepted postbacks never applied (n = ${lost.slice(0, 10).join(', ')}…)`);
      const bad = sent.filter((s) => s.status === 0 || (s.status >= 500 && s.status !== 503));
      if (bad.length > 0) failures.push(`${bad.length} postbacks answered 500 or not at all (${statusCounts(sent)})`);
      return {
        name: 'postgres-stop',
        summary: `${fmt(lost.length)} of ${fmt(acceptedSent.length)} accepted lost; while down: ${statusCounts(during)}; 2xx → applied ≤ ${seconds(Math.max(0, ...toApplied))}`,
        figures: [
          ['load', `${rate}/s for ${seconds(durationMs)}, 2 worker processes`],
          [
            'Postgres down',
            `${seconds(upAt - stopAt)} (stop took ${millis(downAt - stopAt)}, start ${millis(upAt - downAt - Math.max(0, downMs - (downAt - stopAt)))})`,
          ],
          ['answers while down', statusCounts(during)],
          ['answer latency while down', latencies(during.map((s) => s.doneAt - s.sentAt))],
          ['answers, whole run', statusCounts(sent)],
          ['accepted postbacks not applied', `${fmt(lost.length)} of ${fmt(acceptedSent.length)}`],
          ['2xx → applied in Postgres', latencies(toApplied)],
          ['Postgres back → last accepted postback applied', seconds(lastApplied - upAt)],
          ...journal.figures,
        ],
        failures,
      };
    } finally {
      await stack.close();
    }
  },
};
