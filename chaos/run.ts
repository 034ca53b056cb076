// `npm run chaos`: flowpost's processes under faults (workers killed, Postgres stopped, Redis killed
// or full, a flood of unknown ids), each scenario on its own Postgres and Redis, with its figures.
// `npm run chaos -- --short` (or CHAOS_SHORT=1) runs the short version of each (CI);
// `npm run chaos -- worker-kills redis-kill` runs only the named scenarios.
import { postgresStop } from './postgres-stop.js';
import { redisKill } from './redis-kill.js';
import { redisFull } from './redis-full.js';
import type { Scenario, ScenarioResult } from './lib/report.js';
import { unknownIdFlood } from './unknown-id-flood.js';
import { workerKills } from './worker-kills.js';

const SCENARIOS: Scenario[] = [workerKills, postgresStop, redisKill, redisFull, unknownIdFlood];

const args = process.argv.slice(2);
const short = args.includes('--short') || process.env.CHAOS_SHORT === '1';
const names = args.filter((arg) => !arg.startsWith('--'));
const unknown = names.filter((name) => !SCENARIOS.some((s) => s.name === name));
if (unknown.length > 0) {
  console.error(`unknown scenario ${unknown.join(', ')}; the scenarios: ${SCENARIOS.map((s) => s.name).join(', ')}`);
  process.exit(2);
}
const chosen = names.length > 0 ? SCENARIOS.filter((s) => names.includes(s.name)) : SCENARIOS;

const results: Array<{ scenario: Scenario; result: ScenarioResult; ms: number }> = [];
const started = performance.now();
for (const scenario of chosen) {
  console.log(`\n== ${scenario.name}${short ? ' (short)' : ''}: ${scenario.fault}`);
  const t = performance.now();
  let result: ScenarioResult;
  try {
    result = await scenario.run(short);
  } catch (error) {
    result = { name: scenario.name, summary: 'did not complete', figures: [], failures: [String(error)] };
  }
  const ms = performance.now() - t;
  results.push({ scenario, result, ms });
  const width = Math.max(0, ...result.figures.map(([label]) => label.length));
  for (const [label, value] of result.figures) console.log(`  ${label.padEnd(width)}  ${value}`);
  for (const failure of result.failures) console.log(`  BROKEN: ${failure}`);
  console.log(`  ${result.failures.length === 0 ? 'held' : 'BROKEN'} (${(ms / 1000).toFixed(0)} s)`);
}

console.log(`\n| scenario | fault | figures | invariants |`);
console.log(`|---|---|---|---|`);
for (const { scenario, result } of results)
  console.log(
    `| ${scenario.name} | ${scenario.fault} | ${result.summary} | ${result.failures.length === 0 ? 'held' : `**broken**: ${result.failures.join('; ')}`} |`,
  );
console.log(`\n${results.length} scenarios in ${((performance.now() - started) / 1000).toFixed(0)} s`);
process.exit(results.some(({ result }) => result.failures.length > 0) ? 1 : 0);
