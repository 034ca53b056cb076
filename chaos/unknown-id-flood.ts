import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { watchApplied } from './lib/applied.js';
import { accepted, drive, statusCounts, type Sent } from './lib/load.js';
import { fmt, latencies, seconds, type Scenario } from './lib/report.js';
import { startStack, type Stack } from './lib/stack.js';

const DIALOGS = 200;
const LEGIT_RATE = 50;

/** Statements Postgres logged so far (log_statement = all: simple and extended protocol alike). */
async function statementsLogged(stack: Stack): Promise<number> {
  const log = await readFile(join(stack.postgres.dataDir, 'server.log'), 'utf8');
  return (log.match(/LOG: {2}(statement|execute [^:]*):/g) ?? []).length;
}

/**
 * A flood of requests to random postback ids and random Telegram bot ids beside legitimate
 * postbacks: how many Postgres statements the flood costs, and the legitimate postbacks' latency
 * beside their latency without the flood (each must still be accepted and applied).
 */
export const unknownIdFlood: Scenario = {
  name: 'unknown-id-flood',
  fault: 'Unknown postback and Telegram bot ids at 2,000/s (short: 1,000/s), beside 50/s legitimate postbacks',
  run: async (short) => {
    const floodRate = short ? 1_000 : 2_000;
    const durationMs = short ? 3_000 : 10_000;
    const stack = await startStack({
      name: 'unknown-id-flood',
      workers: 1,
      dialogs: DIALOGS,
      postgresConfig: { log_statement: "'all'" },
    });
    try {
      const legit = (offset: number) => (i: number) => stack.postback(offset + i, (offset + i) % DIALOGS);
      const perPhase = (LEGIT_RATE * durationMs) / 1000;
      await drive(stack.base, { rate: LEGIT_RATE, durationMs: 2_000, path: legit(0) }); // warm-up
      await sleep(1_000);

      const before = await statementsLogged(stack);
      const quiet = await drive(stack.base, { rate: LEGIT_RATE, durationMs, path: legit(1_000) });
      await sleep(1_000);
      const between = await statementsLogged(stack);
      const update = JSON.stringify({
        update_id: 1,
        message: { message_id: 1, date: 0, chat: { id: 1, type: 'private' }, text: 'hi' },
      });
      const floodPath = (i: number) =>
        i % 2 === 0
          ? `/api/bots/webhooks/${randomUUID()}/updateDialog?chatId=${i}&fields.n=1`
          : {
              method: 'POST' as const,
              path: `/telegram/${randomUUID()}`,
              body: update,
              headers: { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': 'chaos-unknown' },
            };
      const [flood, loud] = await Promise.all([
        drive(stack.base, {
          rate: floodRate,
          durationMs,
          path: floodPath,
          connections: 256,
        }),
        drive(stack.base, { rate: LEGIT_RATE, durationMs, path: legit(1_000 + perPhase) }),
      ]);
      await sleep(1_000);
      const after = await statementsLogged(stack);

      const watch = watchApplied(stack);
      const legitSent: Sent[] = [...quiet, ...loud];
      const ns = [...quiet.map((s) => 1_000 + s.i), ...loud.map((s) => 1_000 + perPhase + s.i)];
      const missing = await watch.waitFor(ns, 30_000);
      await watch.stop();

      const quietStatements = between - before;
      const floodStatements = after - between;
      const failures: string[] = [];
      const refused = legitSent.filter((s) => !accepted(s));
      if (refused.length > 0)
        failures.push(`${refused.length} legitimate postbacks not accepted (${statusCounts(legitSent)})`);
      if (missing.length > 0) failures.push(`${missing.length} legitimate postbacks never applied`);
      const lat = (sent: Sent[]) => sent.map((s) => s.doneAt - s.sentAt);
      const extraPerRequest = (floodStatements - quietStatements) / flood.length;
      return {
        name: 'unknown-id-flood',
        summary: `${fmt(floodStatements - quietStatements)} extra Postgres statements for ${fmt(flood.length)} unknown ids (${extraPerRequest.toFixed(2)} each); legitimate ${latencies(lat(quiet)).split(', ')[1]} alone, ${latencies(lat(loud)).split(', ')[1]} in the flood`,
        figures: [
          [
            'flood',
            `${fmt(flood.length)} requests in ${seconds(durationMs)}, ${fmt(floodRate)}/s (half GET …/webhooks/<unknown id>/updateDialog, half POST /telegram/<unknown bot id>)`,
          ],
          ['flood answers', statusCounts(flood)],
          ['Postgres statements, legitimate only', `${fmt(quietStatements)} in ${seconds(durationMs)}`],
          ['Postgres statements, legitimate + flood', `${fmt(floodStatements)} in ${seconds(durationMs)}`],
          ['extra statements per flood request', extraPerRequest.toFixed(3)],
          ['legitimate answers', statusCounts(legitSent)],
          ['legitimate latency alone', latencies(lat(quiet))],
          ['legitimate latency in the flood', latencies(lat(loud))],
          ['flood latency', latencies(lat(flood))],
          ['legitimate postbacks not applied', `${missing.length} of ${ns.length}`],
        ],
        failures,
      };
    } finally {
      await stack.close();
    }
  },
};
