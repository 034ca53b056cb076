import type { HookCall, Stack } from './stack.js';
import { percentile } from '../../bench/lib/stats.js';

/** What a scenario measured and which of its invariants broke. */
export interface ScenarioResult {
  name: string;
  /** One line for the summary table. */
  summary: string;
  figures: Array<[label: string, value: string]>;
  /** Broken invariants, each with its evidence; empty when the scenario held. */
  failures: string[];
}

export interface Scenario {
  name: string;
  /** What is done to flowpost, for the summary table. */
  fault: string;
  run(short: boolean): Promise<ScenarioResult>;
}

export const fmt = (n: number) => n.toLocaleString('en-US');
export const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
export const millis = (ms: number) => `${Math.round(ms)} ms`;

/** p50 / p99 / max of latencies in ms. */
export function latencies(values: readonly number[]): string {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return 'none';
  return `p50 ${millis(percentile(sorted, 50))}, p99 ${millis(percentile(sorted, 99))}, max ${millis(sorted.at(-1)!)}`;
}

/** Send Webhook calls: how many, and how many repeated a call already received (the same webhook-id). */
export function hookFigures(calls: readonly HookCall[]): { calls: number; distinct: number; repeated: number } {
  const ids = new Set(calls.map((call) => call.webhookId));
  return { calls: calls.length, distinct: ids.size, repeated: calls.length - ids.size };
}

/**
 * What Postgres says of the step moves and Send Webhook calls: moves handled or superseded (journaled
 * after a newer move of the same dialog, which they never undo), and every recorded call received.
 */
export async function journalFigures(stack: Stack): Promise<{ figures: Array<[string, string]>; failures: string[] }> {
  const moves = await stack
    .db('dialog_inputs')
    .where({ bot_id: stack.botId, kind: 'move' })
    .select('state')
    .count<Array<{ state: string; count: string }>>({ count: '*' })
    .groupBy('state');
  const deliveries = await stack
    .db('deliveries')
    .where({ bot_id: stack.botId })
    .select('state')
    .count<Array<{ state: string; count: string }>>({ count: '*' })
    .groupBy('state');
  const byState = (rows: Array<{ state: string; count: string }>) =>
    rows.map((r) => `${r.state}: ${fmt(Number(r.count))}`).join(', ') || 'none';
  const recorded = deliveries.reduce((sum, r) => sum + Number(r.count), 0);
  const received = new Set(stack.target.calls.map((call) => call.webhookId)).size;
  const failures: string[] = [];
  const unfinished = moves.filter((r) => r.state !== 'done' && r.state !== 'superseded');
  if (unfinished.length > 0) failures.push(`step moves left ${byState(unfinished)}`);
  if (received < recorded) failures.push(`${recorded - received} recorded Send Webhook calls never received`);
  return {
    figures: [
      ['step moves journaled', byState(moves)],
      ['Send Webhook calls recorded', `${byState(deliveries)}; ${fmt(received)} of ${fmt(recorded)} received`],
    ],
    failures,
  };
}
