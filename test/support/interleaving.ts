/**
 * Randomized interleavings of every input that can move a dialog — postbacks (field sets, step
 * moves), button presses, replies, /start, delays firing — with worker restarts, two worker tiers
 * at once and Telegram 502s beyond the sender's own tries. After each run, once everything is
 * quiet, the dialog's single acceptance order must show:
 *  (a) each custom field holds the value of the newest accepted postback that set it;
 *  (b) the step was written by a handled input, never older than the newest move; and when the
 *      newest move is newer than every other input, the dialog ends where that move leads, its
 *      messages being the last sent;
 *  (c) every message Telegram acknowledged matches one recorded send_message effect: none is sent
 *      twice, none recorded is lost;
 *  and nothing accepted (202 / 200) is missing from the journal.
 *
 * A seeded PRNG drives the actions (PROPERTY_SEED=<n> replays a run's choices; timing still varies).
 * The runs are shared among the files test/integration/dialog-order-interleaving-runs-*.test.ts,
 * which run side by side, each with its own harness, database and worker tiers.
 */
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import type { Knex } from 'knex';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createDb } from '../../src/db/connection.js';
import { applyDialogUpdates } from '../../src/db/dialog-writer.js';
import { DIALOG_RUN_JOB_OPTIONS, DRAIN_JOB, drainJobId } from '../../src/jobs/dialog-run-job.js';
import type { ChatUpdateJob as DialogUpdateJob } from '../../src/jobs/dialog-update-job.js';
import { QUEUES } from '../../src/jobs/queue-names.js';
import { tokenKey } from '../../src/telegram/token-key.js';
import { toUpdateInput } from '../../src/jobs/apply-dialog-update.js';
import { createLogger } from '../../src/config/log.js';
import { startWorkerTier, type WorkerTier } from '../../src/workers/worker-tier.js';
import { createScriptedBot, dialogOf, messagesTo, sendUpdate, type TestBot } from './bot-scripts.js';
import { fakeApiError, fakeUpdates, TELEGRAM_ERRORS, type FakeCall } from './fake-telegram.js';
import { REDIS_URL, startHarness, waitFor, type Harness } from './harness.js';

const RUNS = Number(process.env.PROPERTY_RUNS ?? 5);
const ACTIONS = Number(process.env.PROPERTY_ACTIONS ?? 20);
const BASE_SEED = Number(process.env.PROPERTY_SEED ?? Math.floor(Math.random() * 2 ** 31));

/** mulberry32: a small seeded PRNG. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!,
    chance: (p: number) => next() < p,
  };
}
type Rng = ReturnType<typeof prng>;

/** Every run sends two messages: a 502 on the second finds the first acknowledged, and the retry must not send it again. */
const SCRIPT = {
  start: 'hi',
  steps: [
    { key: 'hi', type: 'send_message', text: 'hi {{fields.n1}}', next: 'menu' },
    {
      key: 'menu',
      type: 'send_message',
      text: 'menu {{fields.n1}}',
      buttons: [
        { text: 'Ask', next: 'quiz' },
        { text: 'Wait', next: 'pause' },
      ],
    },
    { key: 'quiz', type: 'send_message', text: 'quiz {{fields.n2}}', next: 'ask' },
    { key: 'ask', type: 'input', text: 'ask', field: 'reply', next: 'thanks' },
    { key: 'thanks', type: 'send_message', text: 'thanks {{fields.reply}}', next: 'pause' },
    { key: 'pause', type: 'delay', seconds: 1, next: 'after' },
    { key: 'after', type: 'send_message', text: 'after {{fields.n1}} {{fields.n2}}', next: 'bye' },
    { key: 'bye', type: 'send_message', text: 'bye {{fields.n2}}' },
    { key: 'jump', type: 'send_message', text: 'jump {{fields.n2}}', next: 'tail' },
    { key: 'tail', type: 'send_message', text: 'tail {{fields.n1}}' },
  ],
};
const MOVE_TARGETS = ['hi', 'quiz', 'pause', 'jump', 'after'] as const;
/** Where a started, auto dialog ends up after a move to a step, and the messages (by first word) it sends on the way. */
const LEADS_TO: Record<string, { end: string; messages: string[] }> = {
  hi: { end: 'menu', messages: ['hi', 'menu'] },
  quiz: { end: 'ask', messages: ['quiz', 'ask'] },
  pause: { end: 'bye', messages: ['after', 'bye'] },
  jump: { end: 'tail', messages: ['jump', 'tail'] },
  after: { end: 'bye', messages: ['after', 'bye'] },
};
/** The second message of each run. */
const SECOND_MESSAGES = new Set(['menu', 'ask', 'bye', 'tail']);

const TIER_OPTIONS = { poll: false, sweepIntervalMs: 400, staleInputMs: 1_500 } as const;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const firstWord = (text: string) => text.split(' ')[0]!;

let h: Harness;
const log = createLogger(process.env.TEST_LOG_LEVEL ?? 'silent');

/** Worker processes: each with its own Postgres pool, as a separate process would have. */
interface Tier {
  tier: WorkerTier;
  db: Knex;
  name: string;
}
const tiers: Tier[] = [];
/** The queues of dialog updates and dialog runs, under this file's prefix: empty once all is quiet. */
const jobQueues: Queue[] = [];
const closing = new Set<Promise<void>>();
let tierCount = 0;
const totals = {
  restarts: 0,
  twoTiers: 0,
  failed502: 0,
  runs: 0,
  newestMoveChecks: 0,
  startedMoveChecks: 0,
  resumedRuns: 0,
  superseded: 0,
  timers: 0,
};

async function startTier(): Promise<Tier> {
  const db = createDb(h.config.databaseUrl);
  const tier = await startWorkerTier(h.config, db, log, TIER_OPTIONS);
  const started = { tier, db, name: `tier${++tierCount}` };
  tiers.push(started);
  return started;
}

/** Closes a tier in the background (it finishes its jobs first, as a process stopping gracefully does). */
function stopTier(t: Tier): void {
  tiers.splice(tiers.indexOf(t), 1);
  const done = t.tier
    .close()
    .then(() => t.db.destroy())
    .finally(() => closing.delete(done));
  closing.add(done);
}

/** 502s for the next sends to a chat whose text starts with one of `words` (failNext cannot aim past the first message of a run). */
const injected: Array<{ chatId: number; words: Set<string>; remaining: number }> = [];
let messageIds = 0;

interface AcceptedPostback {
  chatId: number;
  updateId: number;
  fields: Record<string, string>;
  move?: string;
}
interface AcceptedUpdate {
  chatId: number;
  updateId: number;
  kind: string;
}
interface RunRecord {
  bot: TestBot;
  chats: number[];
  postbacks: AcceptedPostback[];
  updates: AcceptedUpdate[];
  log: string[];
}

let nextChat = 7_100_000;
let nextValue = 1;
let nextEvent = 1;
let nextTelegramUpdate = 1;

async function postback(run: RunRecord, chatId: number, fields: Record<string, string>, move?: string): Promise<void> {
  const query = new URLSearchParams({ chatId: String(chatId) });
  for (const [key, value] of Object.entries(fields)) query.set(`fields.${key}`, value);
  if (move) query.set('stepId', move);
  // As a tracker does: an eventId, and the same request again after a 503 (a machine busy with the
  // other test files may miss the web tier's deadline; the add may still have gone through, and then
  // the repeat is answered as its duplicate, with the first update's id).
  query.set('eventId', `interleaving-${nextEvent++}`);
  let res = await fetch(`${run.bot.postbackUrl}?${query}`);
  for (let retry = 0; res.status === 503 && retry < 10; retry++) {
    await res.arrayBuffer();
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    res = await fetch(`${run.bot.postbackUrl}?${query}`);
  }
  const body = (await res.json()) as { updateId?: string };
  expect([200, 202], JSON.stringify(body)).toContain(res.status);
  const updateId = Number(body.updateId);
  expect(Number.isSafeInteger(updateId)).toBe(true);
  run.postbacks.push({ chatId, updateId, fields, ...(move ? { move } : {}) });
  run.log.push(`postback #${updateId} chat ${chatId} ${JSON.stringify(fields)}${move ? ` → ${move}` : ''}`);
}

async function telegram(run: RunRecord, chatId: number, kind: string, update: Record<string, unknown>): Promise<void> {
  const updateId = nextTelegramUpdate++;
  const res = await sendUpdate(h, run.bot, { ...update, update_id: updateId });
  expect(res.status).toBe(200);
  run.updates.push({ chatId, updateId, kind });
  run.log.push(`telegram ${kind} (update ${updateId}) chat ${chatId}`);
}

type Action = (run: RunRecord) => Promise<void>;

function inputAction(rng: Rng, run: RunRecord, chat?: number): Action {
  const chatId = chat ?? rng.pick(run.chats);
  const roll = rng.next();
  if (roll < 0.3) {
    const fields: Record<string, string> = {};
    if (rng.chance(0.7)) fields.n1 = `v${nextValue++}`;
    if (rng.chance(0.5) || !fields.n1) fields.n2 = `v${nextValue++}`;
    const move = rng.chance(0.3) ? rng.pick(MOVE_TARGETS) : undefined;
    return (r) => postback(r, chatId, fields, move);
  }
  if (roll < 0.47) {
    const move = rng.pick(MOVE_TARGETS);
    return (r) => postback(r, chatId, {}, move);
  }
  if (roll < 0.6) return (r) => telegram(r, chatId, 'start', fakeUpdates.start(chatId));
  if (roll < 0.75) {
    const text = `r${nextValue++}`;
    return (r) => telegram(r, chatId, 'text', fakeUpdates.text(chatId, text));
  }
  const index = rng.int(0, 1);
  return (r) =>
    telegram(r, chatId, `button ${index}`, fakeUpdates.button(chatId, `b:${r.bot.steps.get('menu')}:${index}`));
}

async function restartTier(run: RunRecord, rng: Rng): Promise<void> {
  totals.restarts++;
  const old = tiers[0]!;
  if (rng.chance(0.5)) {
    // Stop first: for a moment no worker runs; accepted inputs wait in Redis.
    stopTier(old);
    await sleep(rng.int(0, 150));
    const fresh = await startTier();
    run.log.push(`restart: ${old.name} stopped, then ${fresh.name} started`);
  } else {
    const fresh = await startTier();
    stopTier(old);
    run.log.push(`restart: ${fresh.name} started, then ${old.name} stopped`);
  }
}

async function toggleSecondTier(run: RunRecord): Promise<void> {
  if (tiers.length >= 2) {
    const gone = tiers[tiers.length - 1]!;
    stopTier(gone);
    run.log.push(`second tier ${gone.name} stopped`);
  } else {
    totals.twoTiers++;
    const fresh = await startTier();
    run.log.push(`second tier ${fresh.name} started`);
  }
}

function fail502(run: RunRecord, rng: Rng): void {
  // A chat that has started (else nothing may be sent to it any more in this run).
  const started = run.chats.filter((c) => run.updates.some((u) => u.chatId === c && u.kind === 'start'));
  const chatId = rng.pick(started.length > 0 ? started : run.chats);
  // The sender tries 4 times per message: 5 failures make the run fail once and resume later.
  if (rng.chance(0.7)) {
    injected.push({ chatId, words: SECOND_MESSAGES, remaining: 5 });
    run.log.push(`next 5 sends of a second message to chat ${chatId} answer 502`);
  } else {
    h.telegram.failNext('sendMessage', TELEGRAM_ERRORS.badGateway(), { chatId, times: 5, token: run.bot.token });
    run.log.push(`next 5 sendMessage to chat ${chatId} answer 502`);
  }
}

async function runScenario(seed: number): Promise<RunRecord> {
  const rng = prng(seed);
  const bot = await createScriptedBot(h, SCRIPT);
  const chats = Array.from({ length: rng.int(2, 3) }, () => nextChat++);
  const run: RunRecord = { bot, chats, postbacks: [], updates: [], log: [] };
  if (tiers.length === 0) await startTier();
  if (tiers.length === 1 && rng.chance(0.5)) await toggleSecondTier(run);

  const restartAt = rng.int(3, ACTIONS - 4);
  const failAt = rng.int(0, ACTIONS - 6);
  let failures = 0;
  for (let step = 0; step < ACTIONS; step++) {
    if (step === restartAt) await restartTier(run, rng);
    else if (rng.chance(0.06)) await toggleSecondTier(run);
    if ((step === failAt || rng.chance(0.04)) && failures < 2) {
      fail502(run, rng);
      failures++;
    }
    // One input, or a burst of inputs accepted concurrently (their order is what Redis gives them).
    // A burst often aims at one dialog: its inputs race through the queue, the writers and the tiers.
    const burst = rng.chance(0.35) ? rng.int(2, 4) : 1;
    const target = rng.chance(0.5) ? rng.pick(run.chats) : undefined;
    const actions = Array.from({ length: burst }, () => inputAction(rng, run, target));
    if (rng.chance(0.2)) {
      // A tracker sending several values of one field at once: only their acceptance order may decide.
      const chatId = rng.pick(run.chats);
      const field = rng.pick(['n1', 'n2']);
      for (let i = rng.int(3, 5); i > 0; i--) {
        const value = `v${nextValue++}`;
        actions.push((r) => postback(r, chatId, { [field]: value }));
      }
    }
    if (actions.length > 1) run.log.push(`burst of ${actions.length}:`);
    await Promise.all(actions.map((action) => action(run)));
    const pause = rng.chance(0.08) ? 1_100 : rng.int(0, 120);
    if (pause > 0) await sleep(pause);
  }
  // Often a tracker has the last word: moves to most dialogs, some several at once (only the newest may win).
  const finals = run.chats
    .filter(() => rng.chance(0.75))
    .flatMap((chatId) => Array.from({ length: rng.int(1, 3) }, () => ({ chatId, move: rng.pick(MOVE_TARGETS) })));
  if (finals.length > 0) run.log.push('final moves:');
  await Promise.all(finals.map(({ chatId, move }) => postback(run, chatId, {}, move)));
  return run;
}

interface InputRow {
  chat_id: number;
  seq: number;
  kind: string;
  payload: any;
  state: string;
  effects: Array<{ type: string; text?: string }> | null;
  effects_done: number;
  attempts: number;
  note: string | null;
}
interface DialogRow {
  chat_id: number;
  step_id: string | null;
  fields: Record<string, unknown>;
  seqs: Record<string, number>;
  last_seq: number;
  started_at: Date | null;
  timer_at: Date | null;
  status: string;
}

/** Waits until every accepted input is applied and handled, every tier closed and every delay fired. */
async function quiesce(run: RunRecord): Promise<void> {
  const maxSeq = new Map<number, number>();
  for (const p of run.postbacks) maxSeq.set(p.chatId, Math.max(maxSeq.get(p.chatId) ?? 0, p.updateId));
  const what = () => `quiescence (seed run log:\n${run.log.join('\n')})`;
  await waitFor(
    async () => {
      if (closing.size > 0) return false;
      const dialogs: DialogRow[] = await h.db('dialogs').where({ bot_id: run.bot.botId });
      for (const [chatId, seq] of maxSeq) {
        const d = dialogs.find((row) => Number(row.chat_id) === chatId);
        if (!d || Number(d.last_seq) < seq) return false;
      }
      if (dialogs.some((d) => d.timer_at !== null)) return false;
      const rows: InputRow[] = await h.db('dialog_inputs').where({ bot_id: run.bot.botId });
      if (rows.some((r) => r.state === 'pending' || r.state === 'acting')) return false;
      const journaledUpdates = new Set(
        rows.filter((r) => r.kind === 'telegram').map((r) => r.payload.update.update_id),
      );
      if (run.updates.some((u) => !journaledUpdates.has(u.updateId))) return false;
      // No job left to come: a delay's alarm (even one a newer move made stale) or a retry waiting out its backoff.
      for (const queue of jobQueues) {
        const counts = await queue.getJobCounts(
          'wait',
          'active',
          'delayed',
          'paused',
          'prioritized',
          'waiting-children',
        );
        if (Object.values(counts).some((n) => n > 0)) return false;
      }
      return true;
    },
    40_000,
    what(),
  );
  // Nothing moves any more: look again a little later.
  await sleep(400);
}

async function checkInvariants(run: RunRecord, seed: number): Promise<void> {
  const context = `seed ${seed}; actions:\n${run.log.join('\n')}`;
  const dialogs: DialogRow[] = await h.db('dialogs').where({ bot_id: run.bot.botId });
  const rows: InputRow[] = (await h.db('dialog_inputs').where({ bot_id: run.bot.botId }).orderBy('seq')).map(
    (r: InputRow) => ({
      ...r,
      chat_id: Number(r.chat_id),
      seq: Number(r.seq),
    }),
  );
  const stepKeyById = new Map([...run.bot.steps].map(([key, id]) => [id, key]));
  const sends = h.telegram.callsOf('sendMessage', run.bot.token);

  // Nothing left open, nothing set aside.
  expect(
    rows.filter((r) => !['done', 'superseded'].includes(r.state)),
    context,
  ).toEqual([]);

  for (const chatId of run.chats) {
    const where = `chat ${chatId}; ${context}`;
    const dialog = dialogs.find((d) => Number(d.chat_id) === chatId);
    const postbacks = run.postbacks.filter((p) => p.chatId === chatId);
    const updates = run.updates.filter((u) => u.chatId === chatId);
    if (!dialog) {
      expect(postbacks.length + updates.length, where).toBe(0);
      continue;
    }
    const mine = rows.filter((r) => r.chat_id === chatId);
    const view = await dialogOf(h, run.bot, chatId);
    expect(view.status, where).toBe('auto');
    expect(dialog.timer_at, where).toBeNull();

    // Nothing accepted is missing: every 202'd move and every 200'd update is journaled, under its own order.
    for (const p of postbacks.filter((p) => p.move)) {
      const row = mine.find((r) => r.seq === p.updateId);
      expect(row?.kind, `move #${p.updateId} journaled; ${where}`).toBe('move');
    }
    for (const u of updates) {
      expect(
        mine.some((r) => r.kind === 'telegram' && r.payload.update.update_id === u.updateId),
        `update ${u.updateId} journaled; ${where}`,
      ).toBe(true);
    }
    expect(Number(dialog.last_seq), where).toBeGreaterThanOrEqual(
      Math.max(0, ...mine.map((r) => r.seq), ...postbacks.map((p) => p.updateId)),
    );

    // (a) each field: the value of the newest accepted postback that set it.
    for (const field of ['n1', 'n2']) {
      const setters = postbacks.filter((p) => p.fields[field] !== undefined).sort((x, y) => x.updateId - y.updateId);
      const newest = setters[setters.length - 1];
      expect(view.fields[field], `field ${field}; ${where}`).toBe(newest?.fields[field]);
      if (newest) expect(Number(dialog.seqs[`f:${field}`]), `seqs f:${field}; ${where}`).toBe(newest.updateId);
    }

    // (c) every acknowledged message is one recorded send_message effect, and each recorded one was sent once.
    const sent = sends
      .filter((c: FakeCall) => Number(c.params.chat_id) === chatId && c.status === 200)
      .map((c) => String(c.params.text));
    const recorded = mine.flatMap((r) =>
      (r.effects ?? []).filter((e) => e.type === 'send_message').map((e) => e.text!),
    );
    expect([...sent].sort(), `sent vs recorded messages; ${where}`).toEqual([...recorded].sort());
    for (const r of mine.filter((r) => r.effects))
      expect(r.effects_done, `effects_done of #${r.seq}; ${where}`).toBe(r.effects!.length);

    // (b) the step was written by a handled input of this dialog, never older than the newest move.
    const moves = mine.filter((r) => r.kind === 'move' && r.payload.stepId !== undefined);
    const stepSeq = Number(dialog.seqs.step ?? 0);
    if (stepSeq > 0) {
      const writer = mine.find((r) => r.seq === stepSeq);
      expect(writer?.state, `the input #${stepSeq} that wrote the step was handled; ${where}`).toBe('done');
    }
    if (moves.length === 0) continue;
    const newestMove = moves[moves.length - 1]!;
    expect(stepSeq, `seqs.step ≥ newest move; ${where}`).toBeGreaterThanOrEqual(newestMove.seq);
    const target = stepKeyById.get(newestMove.payload.stepId)!;
    const others = mine.filter(
      (r) => r.kind === 'telegram' || (r.kind === 'timer' && r.payload.scheduledBy !== newestMove.seq),
    );
    if (others.some((r) => r.seq > newestMove.seq)) continue;
    // The newest move is newer than every other input: the dialog ends where it leads.
    totals.newestMoveChecks++;
    if (dialog.started_at !== null) totals.startedMoveChecks++;
    if (dialog.started_at === null) {
      expect(view.stepKey, `unstarted dialog stays at the newest move's step; ${where}`).toBe(target);
      expect(sent, `an unstarted dialog is sent nothing; ${where}`).toEqual([]);
    } else {
      const leads = LEADS_TO[target]!;
      expect(view.stepKey, `the newest move (#${newestMove.seq} → ${target}) decides the final step; ${where}`).toBe(
        leads.end,
      );
      expect(
        sent.slice(-leads.messages.length).map(firstWord),
        `the newest move's messages are the last sent; ${where}`,
      ).toEqual(leads.messages);
    }
  }
  totals.failed502 += sends.filter((c) => c.status === 502).length;
  totals.resumedRuns += rows.filter((r) => r.effects && r.attempts > 0).length;
  totals.superseded += rows.filter((r) => r.state === 'superseded').length;
  totals.timers += rows.filter((r) => r.kind === 'timer').length;
}

/** The harness (web tier, fake Bot API) and the first worker tier of a test file. */
function useInterleavingHarness(): void {
  beforeAll(async () => {
    h = await startHarness({
      workers: false,
      env: { PUBLIC_URL: 'https://flowpost.test', TELEGRAM_CHAT_RATE_LIMIT: '0', TELEGRAM_BOT_RATE_LIMIT: '0' },
    });
    h.telegram.handle('sendMessage', (params, token) => {
      const chatId = Number(params.chat_id);
      const text = String(params.text);
      const rule = injected.find((r) => r.remaining > 0 && r.chatId === chatId && r.words.has(firstWord(text)));
      if (rule) {
        rule.remaining--;
        throw fakeApiError(TELEGRAM_ERRORS.badGateway());
      }
      const id = Number(token.split(':')[0]);
      return {
        message_id: ++messageIds,
        date: Math.floor(Date.now() / 1000),
        chat: { id: chatId, type: 'private', first_name: 'Test' },
        from: { id, is_bot: true, first_name: `Bot ${id}`, username: `bot${id}` },
        text,
      };
    });
    await startTier();
    for (const name of [QUEUES.dialogUpdates, QUEUES.stepRuns])
      jobQueues.push(new Queue(name, { connection: { url: REDIS_URL }, prefix: h.config.queuePrefix }));
  });
  afterAll(async () => {
    await Promise.all(jobQueues.splice(0).map((queue) => queue.close()));
    for (const t of [...tiers]) stopTier(t);
    await Promise.all([...closing]);
    await h?.close();
  });
}

/**
 * Adds this file's totals to those of the other files of this test run (a Redis hash named after
 * the run's template database, unique to it) and returns the sums, with how many files reported.
 */
async function reportTotals(): Promise<Record<string, number>> {
  const key = `fpt_interleaving:${inject('databaseTemplate')}`;
  const redis = new Redis(REDIS_URL);
  try {
    const batch = redis.multi();
    for (const [field, n] of Object.entries(totals)) batch.hincrby(key, field, n);
    batch.hincrby(key, 'parts', 1).expire(key, 3_600).hgetall(key);
    const results = (await batch.exec()) ?? [];
    const all = results[results.length - 1]![1] as Record<string, string>;
    return Object.fromEntries(Object.entries(all).map(([field, n]) => [field, Number(n)]));
  } finally {
    redis.disconnect();
  }
}

/**
 * Registers the randomized runs numbered `part + 1`, `part + 1 + parts`, … of RUNS (each file a
 * share, so that they run side by side; PROPERTY_SEED gives every file the same base seed, hence
 * the same seeds as one file running them all). The check that the runs exercised restarts and
 * 502s looks at all RUNS runs together: the file that reports last checks the sums.
 */
export function defineInterleavingRuns(part: number, parts: number): void {
  const indices = Array.from({ length: RUNS }, (_, i) => i).filter((i) => i % parts === part);
  useInterleavingHarness();
  describe('dialog order under random interleavings', () => {
    for (const i of indices) {
      const seed = (BASE_SEED + i * 7919) >>> 0;
      it(`interleaving ${i + 1}/${RUNS} (seed ${seed})`, async () => {
        const run = await runScenario(seed);
        await quiesce(run);
        await checkInvariants(run, seed);
        totals.runs++;
      }, 90_000);
    }

    it("the runs exercised restarts, two tiers and 502s beyond the sender's tries", async (ctx) => {
      const all = await reportTotals();
      if (process.env.PROPERTY_STATS) console.log({ file: totals, all });
      if (totals.runs < indices.length) ctx.skip(); // a run failed: its own report says why
      if (all.parts! < parts) ctx.skip(); // the other files' runs are not all in: the last file checks them all
      if (all.runs! < RUNS) ctx.skip(); // a run of another file failed: its own report says why
      expect(all.restarts).toBeGreaterThanOrEqual(RUNS);
      expect(all.failed502).toBeGreaterThanOrEqual(4);
    });
  });
}

/** Registers the deterministic cases: inputs that reach the journal after newer ones were handled. */
export function defineJournaledOutOfOrder(): void {
  useInterleavingHarness();
  describe('inputs journaled out of their order', () => {
    /**
     * Two worker processes take `dialog-updates` jobs of one dialog, and one of them commits a newer
     * job before the other commits an older one (and the newer is handled before the older is even
     * journaled). Simulated deterministically: orders drawn from the real counter, each input written
     * by the writer the consumer calls, then the same wake-up, one at a time in the order given.
     */
    interface Journaling {
      bot: TestBot;
      chatId: number;
      redis: Redis;
      queue: Queue;
    }
    async function withJournal<T>(bot: TestBot, chatId: number, body: (j: Journaling) => Promise<T>): Promise<T> {
      const redis = new Redis(REDIS_URL);
      const queue = new Queue(QUEUES.stepRuns, { connection: redis, prefix: h.config.queuePrefix });
      try {
        return await body({ bot, chatId, redis, queue });
      } finally {
        await queue.close();
        redis.disconnect();
      }
    }
    /** The next acceptance order, as the web tier would have drawn it. */
    const accept = (j: Journaling) => j.redis.incr(`${h.config.queuePrefix}:${QUEUES.dialogUpdates}:id`);
    const moveJob = (j: Journaling, to: string): DialogUpdateJob => ({
      botId: j.bot.botId,
      chatId: j.chatId,
      patch: { stepId: j.bot.steps.get(to)!, stepKey: to },
    });
    const telegramJob = (j: Journaling, update: Record<string, unknown>): DialogUpdateJob => ({
      botId: j.bot.botId,
      chatId: j.chatId,
      telegram: { update: { update_id: nextTelegramUpdate++, ...update }, tokenKey: tokenKey(j.bot.token) },
    });
    /** Journals one accepted input under its order, wakes the dialog, and waits until it is handled. */
    async function apply(j: Journaling, job: DialogUpdateJob, seq: number): Promise<void> {
      await applyDialogUpdates(h.db, [toUpdateInput(job, seq)]);
      await j.queue.add(
        DRAIN_JOB,
        { botId: j.bot.botId, chatId: j.chatId },
        { ...DIALOG_RUN_JOB_OPTIONS, jobId: drainJobId(j.bot.botId, j.chatId, seq) },
      );
      await waitFor(
        async () =>
          (await h
            .db('dialog_inputs')
            .where({ bot_id: j.bot.botId, chat_id: j.chatId, seq })
            .whereIn('state', ['done', 'superseded'])
            .first()) !== undefined,
        10_000,
        `input #${seq} handled`,
      );
    }
    const journalOf = async (bot: TestBot, chatId: number) =>
      (
        await h
          .db('dialog_inputs')
          .where({ bot_id: bot.botId, chat_id: chatId })
          .orderBy('seq')
          .select('seq', 'kind', 'state', 'note')
      ).map(
        (r: { seq: number; kind: string; state: string; note: string | null }) =>
          `#${r.seq} ${r.kind} ${r.state}: ${r.note}`,
      );
    const sentWords = (bot: TestBot, chatId: number) =>
      messagesTo(h, bot, chatId).map((c) => firstWord(String(c.params.text)));

    it('older inputs that reach the journal after a newer move has run are superseded: the newest move decides', async () => {
      if (tiers.length === 0) await startTier();
      const bot = await createScriptedBot(h, SCRIPT);
      const chatId = nextChat++;
      await withJournal(bot, chatId, async (j) => {
        await apply(j, telegramJob(j, fakeUpdates.start(chatId)), await accept(j));
        await waitFor(async () => messagesTo(h, bot, chatId).length >= 2, 5_000, 'hi, menu sent');
        // Accepted in this order: a reply, a button press, a move to jump, a move to quiz. Journaled newest first.
        const reply = await accept(j);
        const press = await accept(j);
        const older = await accept(j);
        const newest = await accept(j);
        await apply(j, moveJob(j, 'quiz'), newest);
        await waitFor(async () => messagesTo(h, bot, chatId).length >= 4, 5_000, 'quiz, ask sent');
        await apply(j, moveJob(j, 'jump'), older);
        await apply(j, telegramJob(j, fakeUpdates.button(chatId, `b:${bot.steps.get('menu')}:1`)), press);
        await apply(j, telegramJob(j, fakeUpdates.text(chatId, 'late')), reply);
      });
      await sleep(1_500); // a delay the button would have set would have fired by now
      const dialog = await dialogOf(h, bot, chatId);
      expect(
        { step: dialog.stepKey, sent: sentWords(bot, chatId), reply: dialog.fields.reply },
        `inputs: ${JSON.stringify(await journalOf(bot, chatId))}`,
      ).toEqual({ step: 'ask', sent: ['hi', 'menu', 'quiz', 'ask'], reply: undefined });
    }, 30_000);

    it('an older /start handled after a newer move of a dialog not yet started still ends where the move leads', async () => {
      if (tiers.length === 0) await startTier();
      const bot = await createScriptedBot(h, SCRIPT);
      const toPause = nextChat++;
      const toJump = nextChat++;
      for (const [chatId, target] of [
        [toPause, 'pause'],
        [toJump, 'jump'],
      ] as const) {
        await withJournal(bot, chatId, async (j) => {
          const start = await accept(j); // the user's /start is accepted first…
          const move = await accept(j); // …then a postback move; the move reaches the journal (and runs) first.
          await apply(j, moveJob(j, target), move);
          await apply(j, telegramJob(j, fakeUpdates.start(chatId)), start);
        });
      }
      await waitFor(async () => messagesTo(h, bot, toJump).length >= 2, 5_000, 'jump, tail sent');
      await sleep(2_500);
      await waitFor(
        async () => (await h.db('dialogs').where({ bot_id: bot.botId, chat_id: toPause }).first())?.timer_at === null,
        5_000,
        'the delay fired or was dropped',
      );

      // jump → tail: both go out, the dialog ends at tail. pause (1 s) → after → bye: the delay fires, both go out.
      // Whether the /start runs first (hi, menu before) or not, the newest move decides where the dialog ends.
      const outcome = async (chatId: number) => {
        const sent = sentWords(bot, chatId);
        return {
          step: (await dialogOf(h, bot, chatId)).stepKey,
          lastSent: sent.slice(-2),
          sentTwice: sent.filter((t, i) => sent.indexOf(t) !== i),
        };
      };
      expect(
        { jump: await outcome(toJump), pause: await outcome(toPause) },
        `inputs: jump ${JSON.stringify(await journalOf(bot, toJump))}, pause ${JSON.stringify(await journalOf(bot, toPause))}`,
      ).toEqual({
        jump: { step: 'tail', lastSent: ['jump', 'tail'], sentTwice: [] },
        pause: { step: 'bye', lastSent: ['after', 'bye'], sentTwice: [] },
      });
    }, 30_000);
  });
}
