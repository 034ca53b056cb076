import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';
import type { BroadcastProgress } from '../src/http/routes/broadcasts.js';
import type { BenchDatabase } from './lib/database.js';
import { freePort, runScript, waitForHttp, type Child } from './lib/processes.js';
import { dropPrefix, REDIS_URL } from './lib/redis.js';
import { percentile } from './lib/stats.js';

const ADMIN_KEY = 'bench-admin-key-0123456789';
/** The per-bot rate the fake Bot API enforces, and flowpost's own TELEGRAM_BOT_RATE_LIMIT. */
const RATE = Number(process.env.BENCH_BROADCAST_RATE ?? 300);
/** How the fake enforces it: `bucket` (a token bucket of BURST) or `window` (any sliding 1 s); see the server. */
const FAKE_MODE = process.env.BENCH_BROADCAST_FAKE === 'window' ? 'window' : 'bucket';
const BURST = Number(process.env.BENCH_BROADCAST_BURST ?? 10);
/** flowpost's own bot limit (TELEGRAM_BOT_RATE_LIMIT); the enforced rate unless told. */
const FLOWPOST_RATE = Number(process.env.BENCH_BROADCAST_FLOWPOST_RATE ?? RATE);
const RECIPIENTS = Number(process.env.BENCH_BROADCAST_RECIPIENTS ?? 50_000);
/** A smaller broadcast first, to compare the worker's memory with audience size. */
const SMALL = Math.min(RECIPIENTS, Number(process.env.BENCH_BROADCAST_SMALL ?? 5_000));
const LIVE_DIALOGS = 200;
const LIVE_RATE = 20;
const LIVE_SECONDS = 15;
const FIRST_RECIPIENT = 1_000_000;
const FIRST_LIVE = 1_000;

export interface LiveFigures {
  postbacks: number;
  p50: number;
  p99: number;
  max: number;
}

export interface BroadcastFigures {
  rate: number;
  /** How the fake enforced it, e.g. "a token bucket of 10". */
  enforcement: string;
  flowpostRate: number;
  recipients: number;
  /** The broadcast's own messages a second between 10 % and 90 % of its progress (arrivals at the fake). */
  sustainedPerSec: number;
  /** All the bot's messages (broadcast and live) a second over the same span. */
  botPerSec: number;
  /** First to last broadcast message at the fake. */
  seconds: number;
  /** 429s the fake answered while the broadcast ran. */
  throttled: number;
  sent: number;
  liveRate: number;
  liveWithout: LiveFigures;
  liveWith: LiveFigures;
  /** The worker's RSS (MB) when the broadcast was 10, 50 and 90 % through. */
  rssAt: [number, number, number];
  /** Peak worker RSS (MB) during the small and the large broadcast. */
  smallPeakRss: number;
  largePeakRss: number;
  /** How far the large broadcast was (0–1) when the worker's RSS peaked. */
  largePeakAt: number;
  small: number;
}

interface Arrivals {
  accepted: Array<[number, number, string]>;
  refused: Array<[number, number]>;
}

const wallClock = () => performance.timeOrigin + performance.now();

/** The resident set of a process, in MB (Linux /proc). */
function rssMb(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) / 1024 : Number.NaN;
}

/**
 * (j) A broadcast to 50,000 started dialogs through one worker process, against a fake Bot API
 *     that enforces a per-bot rate (by default a token bucket of BURST refilled at RATE a second;
 *     BENCH_BROADCAST_FAKE=window: any sliding 1 s window) and answers 429 beyond it: the
 *     broadcast's sustained rate beside that enforced rate, the 429s it drew, the latency of live
 *     postbacks of other dialogs of the same bot with and without it, and the worker's memory as
 *     the broadcast goes on.
 */
export async function benchBroadcast(database: BenchDatabase): Promise<BroadcastFigures> {
  const prefix = `fpb_${randomBytes(4).toString('hex')}`;
  const fakePort = await freePort();
  const port = await freePort();
  const fakeRoot = `http://127.0.0.1:${fakePort}`;
  const children: Child[] = [
    runScript('bench/servers/rate-limited-bot-api.ts', {
      PORT: String(fakePort),
      RATE: String(RATE),
      MODE: FAKE_MODE,
      BURST: String(BURST),
    }),
  ];
  const env = {
    DATABASE_URL: database.url,
    REDIS_URL,
    QUEUE_PREFIX: prefix,
    ADMIN_API_KEY: ADMIN_KEY,
    PUBLIC_URL: 'https://bench.flowpost.test',
    TELEGRAM_API_ROOT: fakeRoot,
    TELEGRAM_BOT_RATE_LIMIT: String(FLOWPOST_RATE),
  };
  children.push(runScript('src/cli/web.ts', { ...env, PORT: String(port) }));
  const base = `http://127.0.0.1:${port}`;
  const api = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
    return (await res.json()) as T;
  };
  const arrivals = async (): Promise<Arrivals> => (await fetch(`${fakeRoot}/_arrivals`)).json() as Promise<Arrivals>;
  const pool = new Pool(base, { connections: 16 });
  try {
    await waitForHttp(`${base}/healthz`);
    await waitForHttp(`${fakeRoot}/_arrivals`);
    const token = `4343:bench-token-${randomBytes(8).toString('hex')}`;
    const bot = await api<{ id: string }>('POST', '/api/v1/bots', { name: 'bench', telegramToken: token });
    const webhook = await api<{ id: string }>('POST', `/api/v1/bots/${bot.id}/webhooks`, {
      name: 'bench',
      rateLimit: 100_000,
    });
    await api('PUT', `/api/v1/bots/${bot.id}/script`, {
      start: 'hello',
      steps: [
        { key: 'hello', type: 'send_message', text: 'Hello' },
        { key: 'target', type: 'send_message', text: 'n={{fields.n}}' },
      ],
    });

    // Started dialogs straight into Postgres (a /start each through Telegram updates would take
    // minutes): the audience tagged `news` (the first SMALL also `small`), the live ones untagged.
    await database.db.raw(
      `INSERT INTO dialogs (bot_id, chat_id, name, status, tags, started_at)
       SELECT ?, ? + g, 'Reader ' || g, 'auto',
              CASE WHEN g < ? THEN ARRAY['news', 'small'] ELSE ARRAY['news'] END, now()
         FROM generate_series(0, ? - 1) AS g`,
      [bot.id, FIRST_RECIPIENT, SMALL, RECIPIENTS],
    );
    await database.db.raw(
      `INSERT INTO dialogs (bot_id, chat_id, name, status, started_at)
       SELECT ?, ? + g, 'Live ' || g, 'auto', now() FROM generate_series(0, ? - 1) AS g`,
      [bot.id, FIRST_LIVE, LIVE_DIALOGS],
    );
    await database.db.raw('ANALYZE dialogs');

    const worker = runScript('src/cli/worker.ts', env);
    children.push(worker);
    const workerPid = worker.process.pid!;

    // Live postbacks moving the untagged dialogs to `target`, each matched to its message by `n`.
    const postbackPath = `/api/bots/webhooks/${webhook.id}/updateDialog`;
    let nextN = 0;
    const sentAt = new Map<number, number>();
    const livePostbacks = async (seconds: number): Promise<number[]> => {
      const ns: number[] = [];
      const startedAt = performance.now();
      const inFlight: Promise<unknown>[] = [];
      for (let i = 0; i < seconds * LIVE_RATE; i++) {
        const wait = startedAt + (i * 1000) / LIVE_RATE - performance.now();
        if (wait > 0) await sleep(wait);
        const n = nextN++;
        ns.push(n);
        sentAt.set(n, wallClock());
        inFlight.push(
          pool
            .request({
              method: 'GET',
              path: `${postbackPath}?chatId=${FIRST_LIVE + (n % LIVE_DIALOGS)}&stepId=target&n=${n}`,
            })
            .then((r) => {
              if (r.statusCode !== 202) throw new Error(`postback answered ${r.statusCode}`);
              return r.body.dump();
            }),
        );
      }
      await Promise.all(inFlight);
      return ns;
    };
    const liveFigures = async (ns: number[]): Promise<LiveFigures> => {
      const wanted = new Set(ns);
      const deadline = Date.now() + 60_000;
      for (;;) {
        const arrived = new Map<number, number>();
        for (const [at, , text] of (await arrivals()).accepted) {
          const n = text.startsWith('n=') ? Number(text.slice(2)) : Number.NaN;
          if (wanted.has(n)) arrived.set(n, at);
        }
        if (arrived.size === wanted.size) {
          const latencies = ns.map((n) => arrived.get(n)! - sentAt.get(n)!).sort((a, b) => a - b);
          return {
            postbacks: ns.length,
            p50: percentile(latencies, 50),
            p99: percentile(latencies, 99),
            max: latencies.at(-1) ?? 0,
          };
        }
        if (Date.now() > deadline) throw new Error(`only ${arrived.size} of ${wanted.size} live messages arrived`);
        await sleep(500);
      }
    };

    // Warm-up (JIT, pools), then run A: the live load alone.
    await liveFigures(await livePostbacks(2));
    const liveWithout = await liveFigures(await livePostbacks(LIVE_SECONDS));

    /** Starts a broadcast and samples the worker's RSS with its progress every second until it is done. */
    const runBroadcast = async (tag: string, duringRun?: (progress: number) => void) => {
      const created = await api<{ id: string }>('POST', `/api/v1/bots/${bot.id}/broadcasts`, {
        audience: { tags: [tag] },
        text: 'News for {{name}}: a short message, as a broadcast sends it.',
      });
      const samples: Array<{ progress: number; rss: number }> = [];
      const deadline = Date.now() + 30 * 60_000;
      for (;;) {
        await sleep(1_000);
        const p = await api<BroadcastProgress>('GET', `/api/v1/bots/${bot.id}/broadcasts/${created.id}`);
        const handled = p.sent + p.blocked + p.failed + p.skipped + p.interrupted;
        const progress = p.planned ? handled / p.planned : 0;
        samples.push({ progress, rss: rssMb(workerPid) });
        duringRun?.(progress);
        if (p.state === 'done') return { samples, progress: p };
        if (p.state !== 'running' && p.state !== 'scheduled') throw new Error(`broadcast ${p.state}`);
        if (Date.now() > deadline) throw new Error(`broadcast not done: ${handled} of ${p.planned}`);
      }
    };

    const small = await runBroadcast('small');
    const smallPeakRss = Math.max(...small.samples.map((s) => s.rss));

    // Run B: the large broadcast, and the same live load once it is 10 % through.
    const before = await arrivals();
    const acceptedBefore = before.accepted.length;
    const refusedBefore = before.refused.length;
    const live: { postbacks?: Promise<number[]> } = {};
    const large = await runBroadcast('news', (progress) => {
      if (!live.postbacks && progress >= 0.1) live.postbacks = livePostbacks(LIVE_SECONDS);
    });
    if (!live.postbacks) throw new Error('the broadcast ended before the live load began');
    const liveWith = await liveFigures(await live.postbacks);

    const after = await arrivals();
    const accepted = after.accepted.slice(acceptedBefore);
    // For a closer look at the pacing (gaps between sends): BENCH_BROADCAST_DUMP=<file>.
    if (process.env.BENCH_BROADCAST_DUMP) writeFileSync(process.env.BENCH_BROADCAST_DUMP, JSON.stringify(after));
    const mine = accepted.filter(([, chatId]) => chatId >= FIRST_RECIPIENT).map(([at]) => at);
    const at = (share: number) => mine[Math.min(mine.length - 1, Math.floor(share * mine.length))]!;
    const from = at(0.1);
    const to = at(0.9);
    const spanS = (to - from) / 1000;
    const inSpan = (t: number) => t >= from && t <= to;
    const rssNear = (share: number) =>
      large.samples.reduce((best, s) => (Math.abs(s.progress - share) < Math.abs(best.progress - share) ? s : best))
        .rss;
    const peak = large.samples.reduce((best, s) => (s.rss > best.rss ? s : best));
    return {
      rate: RATE,
      enforcement: FAKE_MODE === 'bucket' ? `a token bucket of ${BURST}` : 'any sliding 1 s window',
      flowpostRate: FLOWPOST_RATE,
      recipients: RECIPIENTS,
      sustainedPerSec: (mine.filter(inSpan).length - 1) / spanS,
      botPerSec: (accepted.filter(([t]) => inSpan(t)).length - 1) / spanS,
      seconds: (mine.at(-1)! - mine[0]!) / 1000,
      throttled: after.refused.length - refusedBefore,
      sent: large.progress.sent,
      liveRate: LIVE_RATE,
      liveWithout,
      liveWith,
      rssAt: [rssNear(0.1), rssNear(0.5), rssNear(0.9)],
      smallPeakRss,
      largePeakRss: peak.rss,
      largePeakAt: peak.progress,
      small: SMALL,
    };
  } finally {
    await pool.close();
    await Promise.all(children.map((child) => child.stop()));
    await dropPrefix(prefix);
  }
}
