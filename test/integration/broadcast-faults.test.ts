/**
 * Broadcasts through faults, with real worker processes (`src/cli/worker.ts`): a SIGKILL mid-broadcast,
 * Redis lost mid-broadcast (a redis-server of the test's own, killed and started again empty), and a
 * graceful restart (SIGTERM). The promise: each recipient is mailed at most once, and progress goes
 * on where it stopped. A send that may have reached Telegram when its worker died is not repeated:
 * it is counted `interrupted`. So, at the Bot API: nobody got the message twice; everybody it never
 * reached is `interrupted` (nothing else can happen here), and there are few of those; the
 * broadcast ends `done` with sent + interrupted = planned.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { BroadcastProgress } from '../../src/http/routes/broadcasts.js';
import { createScriptedBot, type TestBot } from '../support/bot-scripts.js';
import { waitForBroadcast } from '../support/broadcasts.js';
import { databaseUrl } from '../support/database.js';
import { freePort } from '../support/free-port.js';
import { REDIS_URL, startHarness, waitFor, type Harness } from '../support/harness.js';
import { redisAnswers } from '../support/private-redis.js';

const AUDIENCE = 600;
const LOCK_MS = 2_000;
/** The bot's rate: the broadcast takes every slot (no live traffic here), so ~6 s for the audience. */
const BOT_RATE = 100;
/** The runner's sends in flight (8) and the outcomes it has not written yet (~200 ms at BOT_RATE). */
const INTERRUPTED_BOUND = 8 + BOT_RATE / 5 + 5;

const SCRIPT = { start: 'hello', steps: [{ key: 'hello', type: 'send_message', text: 'Hello!' }] };

/** One sendMessage as it reached the fake Bot API, with the worker process that made it. */
interface Arrival {
  worker: string;
  chatId: number;
  text: string;
  at: number;
}

/**
 * The worker processes' Bot API: each worker has a root `/<worker>/…`; every sendMessage is
 * recorded when its request has arrived, and answered after a few ms, as a real round trip takes.
 */
interface RecordingTelegram {
  root: string;
  arrivals: Arrival[];
  close(): Promise<void>;
}

async function startRecordingTelegram(): Promise<RecordingTelegram> {
  let messageId = 1;
  const arrivals: Arrival[] = [];
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const match = /^\/([^/]+)\/bot[^/]+\/(\w+)/.exec(req.url ?? '');
      const [worker, method] = match ? [match[1]!, match[2]!] : ['?', '?'];
      const body = Buffer.concat(chunks).toString('utf8');
      const params = (body.startsWith('{') ? JSON.parse(body) : {}) as Record<string, unknown>;
      const answer = (result: unknown) => {
        if (res.destroyed) return;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ ok: true, result }));
      };
      if (method !== 'sendMessage') return answer(true);
      const arrival: Arrival = { worker, chatId: Number(params.chat_id), text: String(params.text), at: Date.now() };
      arrivals.push(arrival);
      setTimeout(
        () =>
          answer({
            message_id: messageId++,
            date: Math.floor(Date.now() / 1000),
            chat: { id: arrival.chatId, type: 'private' },
            text: arrival.text,
          }),
        15,
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    root: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    arrivals,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

interface WorkerProc {
  name: string;
  child: ChildProcess;
  output: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const procs: WorkerProc[] = [];
let telegram: RecordingTelegram;

beforeAll(async () => {
  telegram = await startRecordingTelegram();
});
/** Kills every worker process still running: a test that failed half way leaves none to the next. */
async function killWorkers(): Promise<void> {
  for (const proc of procs)
    if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill('SIGKILL');
  await Promise.all(procs.map((proc) => proc.exited));
}

afterEach(killWorkers);
afterAll(async () => {
  await killWorkers();
  await telegram?.close();
});

/** A worker process on the harness's queues (and its Redis); resolves once its consumers run. */
async function spawnWorker(h: Harness, name: string, redisUrl: string): Promise<WorkerProc> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/worker.ts'], {
    env: {
      PATH: process.env.PATH ?? '',
      DATABASE_URL: databaseUrl(),
      REDIS_URL: redisUrl,
      QUEUE_PREFIX: h.config.queuePrefix,
      QUEUE_LOCK_MS: String(LOCK_MS),
      TELEGRAM_API_ROOT: `${telegram.root}/${name}`,
      TELEGRAM_BOT_RATE_LIMIT: String(BOT_RATE),
      TELEGRAM_CHAT_RATE_LIMIT: '0',
      PUBLIC_URL: 'https://flowpost.test',
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const proc: WorkerProc = {
    name,
    child,
    output: '',
    exited: new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal }))),
  };
  child.stdout.on('data', (chunk: Buffer) => (proc.output += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (proc.output += chunk.toString('utf8')));
  procs.push(proc);
  await waitFor(
    async () => {
      if (child.exitCode !== null) throw new Error(`worker ${name} exited:\n${proc.output}`);
      return proc.output.includes('workers running');
    },
    30_000,
    `worker ${name} running`,
    50,
  );
  return proc;
}

/** A bot with AUDIENCE started dialogs in `auto`, written straight to Postgres. */
async function botWithAudience(h: Harness, firstChat: number): Promise<{ bot: TestBot; chats: number[] }> {
  const bot = await createScriptedBot(h, SCRIPT);
  const chats = Array.from({ length: AUDIENCE }, (_, i) => firstChat + i);
  await h.db('dialogs').insert(
    chats.map((chatId) => ({
      bot_id: bot.botId,
      chat_id: chatId,
      name: `User ${chatId}`,
      status: 'auto',
      started_at: new Date(),
    })),
  );
  return { bot, chats };
}

async function startBroadcast(h: Harness, bot: TestBot, text: string): Promise<string> {
  const created = await h.api('POST', `/api/v1/bots/${bot.botId}/broadcasts`, { text: `${text} {{chatId}}` });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  return created.body.id as string;
}

const arrivalsOf = (text: string) => telegram.arrivals.filter((a) => a.text.startsWith(`${text} `));

async function untilSent(text: string, count: number, ms = 30_000): Promise<void> {
  await waitFor(async () => arrivalsOf(text).length >= count, ms, `${count} of "${text}" sent`, 5);
}

async function untilDone(h: Harness, bot: TestBot, id: string, ms = 60_000): Promise<BroadcastProgress> {
  return waitForBroadcast(h, bot, id, (p) => p.state === 'done', 'the broadcast done', ms, 100);
}

interface Tally {
  interrupted: number;
  /** Of the interrupted, how many the Bot API did receive (their send had reached it). */
  interruptedReceived: number;
  sent: number;
}

/** The promise, checked against what the Bot API received; returns the counts. */
async function checkAtMostOnce(h: Harness, id: string, chats: number[], text: string): Promise<Tally> {
  const received = new Map<number, number>();
  for (const arrival of arrivalsOf(text)) received.set(arrival.chatId, (received.get(arrival.chatId) ?? 0) + 1);
  // Nobody mailed twice, nobody outside the audience.
  expect([...received].filter(([, n]) => n > 1)).toEqual([]);
  expect([...received.keys()].filter((chatId) => !chats.includes(chatId))).toEqual([]);
  for (const arrival of arrivalsOf(text)) expect(arrival.text).toBe(`${text} ${arrival.chatId}`);

  const rows = await h
    .db('broadcast_recipients')
    .where({ broadcast_id: id })
    .select<Array<{ chat_id: string; state: string }>>('chat_id', 'state');
  const state = new Map(rows.map((row) => [Number(row.chat_id), row.state]));
  expect(rows).toHaveLength(chats.length);
  const sent = rows.filter((row) => row.state === 'sent').length;
  const interrupted = rows.filter((row) => row.state === 'interrupted').map((row) => Number(row.chat_id));
  // Nothing else happened to anybody: sent or interrupted, none left to send.
  expect(sent + interrupted.length).toBe(chats.length);
  // Whoever is `sent` got it; whoever never got it is accounted for (`interrupted`), not skipped silently.
  for (const chatId of chats) {
    if (state.get(chatId) === 'sent') expect(received.get(chatId), `chat ${chatId}`).toBe(1);
    if (!received.has(chatId)) expect(state.get(chatId), `chat ${chatId}`).toBe('interrupted');
  }
  const broadcast = await h.db('broadcasts').where({ id }).first();
  expect(broadcast.state).toBe('done');
  expect(broadcast.planned).toBe(chats.length);
  return {
    sent,
    interrupted: interrupted.length,
    interruptedReceived: interrupted.filter((c) => received.has(c)).length,
  };
}

describe('broadcasts through a killed worker and a restart', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ env: { PUBLIC_URL: 'https://flowpost.test', LOG_LEVEL: 'error' } });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('SIGKILL of the worker mid-broadcast: nobody mailed twice, the few sends under way counted interrupted, done', async () => {
    const w1 = await spawnWorker(h, 'k1', REDIS_URL);
    const w2 = await spawnWorker(h, 'k2', REDIS_URL);
    const { bot, chats } = await botWithAudience(h, 5_100_000);
    const id = await startBroadcast(h, bot, 'Killed');
    await untilSent('Killed', Math.floor(AUDIENCE * 0.3));
    // The worker running the broadcast is the one whose sends arrive.
    const runner = arrivalsOf('Killed').at(-1)!.worker === 'k1' ? w1 : w2;
    const other = runner === w1 ? w2 : w1;
    const killedAt = Date.now();
    runner.child.kill('SIGKILL');
    await runner.exited;
    const sentBefore = arrivalsOf('Killed').length;

    const resumed = await waitFor(
      async () => arrivalsOf('Killed').find((a) => a.worker === other.name && a.at >= killedAt) ?? null,
      30_000,
      'the other worker sending',
    );
    await untilDone(h, bot, id);
    const tally = await checkAtMostOnce(h, id, chats, 'Killed');
    console.info(
      `SIGKILL at ${sentBefore}/${AUDIENCE} sent: resumed by the other worker ${resumed.at - killedAt} ms later; ` +
        `interrupted ${tally.interrupted} (${tally.interruptedReceived} of them had reached the Bot API), sent ${tally.sent}`,
    );
    expect(tally.interrupted).toBeLessThanOrEqual(INTERRUPTED_BOUND);
    // Those not received were claimed and never sent: a wide claim-to-send window shows here.
    expect(tally.interrupted - tally.interruptedReceived).toBeLessThanOrEqual(8);
  }, 120_000);

  it('SIGTERM mid-broadcast: the sends under way finish, the rest stays to send; after a restart everyone is mailed exactly once', async () => {
    const w1 = await spawnWorker(h, 't1', REDIS_URL);
    const { bot, chats } = await botWithAudience(h, 5_200_000);
    const id = await startBroadcast(h, bot, 'Restarted');
    await untilSent('Restarted', Math.floor(AUDIENCE * 0.3));
    w1.child.kill('SIGTERM');
    expect(await w1.exited, w1.output.slice(-3000)).toMatchObject({ code: 0, signal: null });
    const sentBefore = arrivalsOf('Restarted').length;
    expect(sentBefore).toBeLessThan(AUDIENCE);
    const left = await h.db('broadcast_recipients').where({ broadcast_id: id, state: 'sending' }).count('* as n');
    expect(
      Number(left[0]!.n),
      w1.output
        .split('\n')
        .filter((l) => /broadcast|shut|stop/i.test(l))
        .join('\n'),
    ).toBe(0);

    await spawnWorker(h, 't2', REDIS_URL);
    await untilDone(h, bot, id);
    const tally = await checkAtMostOnce(h, id, chats, 'Restarted');
    expect(tally).toEqual({ sent: AUDIENCE, interrupted: 0, interruptedReceived: 0 });
    expect(arrivalsOf('Restarted').filter((a) => a.worker === 't2').length).toBe(AUDIENCE - sentBefore);
  }, 120_000);
});

/** A redis-server of the test's own, with no persistence, that can be killed and started again on its port. */
async function startOwnRedis(port: number): Promise<ChildProcess> {
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--save', '', '--appendonly', 'no', '--bind', '127.0.0.1', '--protected-mode', 'no'],
    { stdio: 'ignore' },
  );
  await waitFor(async () => redisAnswers(`redis://127.0.0.1:${port}`), 5_000, 'the redis-server up', 50);
  return child;
}

describe('broadcasts through the loss of Redis', () => {
  let h: Harness;
  let redis: ChildProcess;
  let redisUrl: string;
  let port: number;
  beforeAll(async () => {
    port = await freePort();
    redisUrl = `redis://127.0.0.1:${port}`;
    redis = await startOwnRedis(port);
    h = await startHarness({ env: { PUBLIC_URL: 'https://flowpost.test', LOG_LEVEL: 'error', REDIS_URL: redisUrl } });
  });
  afterAll(async () => {
    await h?.close();
    redis?.kill('SIGKILL');
  });

  it('Redis killed and started again empty mid-broadcast: the job and the lease are gone; it goes on, nobody mailed twice', async () => {
    const w1 = await spawnWorker(h, 'r1', redisUrl);
    const { bot, chats } = await botWithAudience(h, 5_300_000);
    const id = await startBroadcast(h, bot, 'Lost');
    await untilSent('Lost', Math.floor(AUDIENCE * 0.3));
    const gone = new Promise((resolve) => redis.once('exit', resolve));
    const lostAt = Date.now();
    redis.kill('SIGKILL');
    await gone;
    const sentBefore = arrivalsOf('Lost').length;
    redis = await startOwnRedis(port);

    const resumed = await waitFor(
      async () => arrivalsOf('Lost').find((a) => a.at > lostAt && arrivalsOf('Lost').indexOf(a) >= sentBefore) ?? null,
      30_000,
      'sends again',
    );
    await untilDone(h, bot, id);
    const tally = await checkAtMostOnce(h, id, chats, 'Lost');
    // The run that lost its lease stopped, and a new run took the broadcast to its end (it logs
    // that end just after the broadcast is written done).
    const endsLogged = () =>
      w1.output
        .split('\n')
        // Whole lines only (the last may still be arriving).
        .filter((line) => line.startsWith('{') && line.endsWith('}'))
        .map((line) => JSON.parse(line) as { msg?: string; broadcastId?: string; end?: string })
        .filter((line) => line.msg === 'broadcast run ended' && line.broadcastId === id)
        .map((line) => line.end);
    await waitFor(async () => endsLogged().includes('done'), 10_000, 'the last run logs its end').catch(() => null);
    const ends = endsLogged();
    expect(ends).toContain('stopped');
    expect(ends).toContain('done');
    console.info(
      `Redis lost at ${sentBefore}/${AUDIENCE} sent: sending again ${resumed.at - lostAt} ms later; ` +
        `interrupted ${tally.interrupted} (${tally.interruptedReceived} of them had reached the Bot API), sent ${tally.sent}`,
    );
    expect(tally.interrupted).toBeLessThanOrEqual(INTERRUPTED_BOUND);
    expect(tally.interrupted - tally.interruptedReceived).toBeLessThanOrEqual(8);
    expect(w1.child.exitCode).toBeNull();
  }, 120_000);
});
