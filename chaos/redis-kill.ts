import { setTimeout as sleep } from 'node:timers/promises';
import { settleCalls, watchApplied } from './lib/applied.js';
import { accepted, startDrive, statusCounts } from './lib/load.js';
import { fmt, journalFigures, latencies, millis, seconds, type Scenario } from './lib/report.js';
import { now, startStack } from './lib/stack.js';

const DIALOGS = 300;
/** appendfsync everysec: what Redis had not yet written to its AOF may be lost with it. */
const FSYNC_WINDOW_MS = 1_000;

/**
 * Redis killed (SIGKILL) and started again on the same port and directory, with AOF
 * (appendonly yes, appendfsync everysec), flowpost's processes left running: only 503s while it
 * is down (no 500s, no hangs), accepting again within seconds of its return, and no accepted
 * postback lost outside the fsync window.
 */
export const redisKill: Scenario = {
  name: 'redis-kill',
  fault: 'Redis SIGKILLed, restarted on the same port and AOF (everysec)',
  run: async (short) => {
    const rate = short ? 100 : 150;
    const durationMs = short ? 8_000 : 30_000;
    const downMs = short ? 2_000 : 5_000;
    const stack = await startStack({ name: 'redis-kill', workers: 2, dialogs: DIALOGS, redis: { aof: true } });
    try {
      const watch = watchApplied(stack);
      const load = startDrive(stack.base, {
        rate,
        durationMs,
        path: (i) => stack.postback(i, i % DIALOGS),
        timeoutMs: 10_000,
      });
      await sleep(short ? 2_000 : 8_000);
      const killAt = now();
      await stack.redis.kill();
      await sleep(downMs);
      const restartAt = now();
      await stack.redis.start();
      const upAt = now();
      const sent = await load.done;
      const acceptedSent = sent.filter(accepted);
      const lost = await watch.waitFor(
        acceptedSent.map((s) => s.i),
        short ? 40_000 : 60_000,
      );
      await settleCalls(stack, 2_000, 30_000);
      await watch.stop();
      const journal = await journalFigures(stack);

      // Sent while no redis-server ran (those in flight at the kill left out).
      const during = sent.filter((s) => s.sentAt >= killAt + 100 && s.sentAt < restartAt);
      const firstAccepted = sent.find((s) => accepted(s) && s.sentAt >= restartAt);
      const lostSent = acceptedSent.filter((s) => lost.includes(s.i));
      const outsideWindow = lostSent.filter((s) => s.doneAt < killAt - FSYNC_WINDOW_MS || s.doneAt > killAt + 100);
      const maxLatency = Math.max(...sent.map((s) => s.doneAt - s.sentAt));
      const failures: string[] = [...journal.failures];
      if (outsideWindow.length > 0)
        failures.push(`${outsideWindow.length} accepted postbacks lost outside the 1 s fsync window`);
      const notServiceUnavailable = during.filter((s) => !accepted(s) && s.status !== 503);
      if (notServiceUnavailable.length > 0)
        failures.push(
          `while Redis was down, ${notServiceUnavailable.length} answers other than 503 (${statusCounts(during)})`,
        );
      const bad = sent.filter((s) => s.status === 0 || (s.status >= 500 && s.status !== 503));
      if (bad.length > 0) failures.push(`${bad.length} postbacks answered 500 or not at all (${statusCounts(sent)})`);
      if (!firstAccepted) failures.push('no postback accepted after Redis came back');
      return {
        name: 'redis-kill',
        summary: `while down: ${statusCounts(during)}, max latency ${millis(maxLatency)}; first 2xx ${firstAccepted ? seconds(firstAccepted.doneAt - restartAt) : 'never'} after the restart; ${fmt(lost.length)} of ${fmt(acceptedSent.length)} accepted lost`,
        figures: [
          ['load', `${rate}/s for ${seconds(durationMs)}, 2 worker processes, AOF appendfsync everysec`],
          [
            'Redis down',
            `${seconds(restartAt - killAt)} (kill → restart ${seconds(restartAt - killAt)}, restart → PING answered ${millis(upAt - restartAt)})`,
          ],
          ['answers while down', statusCounts(during)],
          ['answer latency while down', latencies(during.map((s) => s.doneAt - s.sentAt))],
          ['answers, whole run', statusCounts(sent)],
          ['slowest answer, whole run', millis(maxLatency)],
          ['redis-server restarted → first 2xx', firstAccepted ? seconds(firstAccepted.doneAt - restartAt) : 'never'],
          [
            'accepted then lost',
            `${fmt(lost.length)} of ${fmt(acceptedSent.length)}${lostSent.length > 0 ? ` (answered ${lostSent.map((s) => millis(s.doneAt - killAt)).join(', ')} from the kill)` : ''}`,
          ],
          ...journal.figures,
        ],
        failures,
      };
    } finally {
      await stack.close();
    }
  },
};
