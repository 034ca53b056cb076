import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';
import { now } from './stack.js';

/** One request: when it left, when (and how) it was answered. */
export interface Sent {
  i: number;
  path: string;
  sentAt: number;
  doneAt: number;
  /** The HTTP status, or 0 when no answer came (a connection error or no answer within the timeout). */
  status: number;
  error?: string;
}

export interface Request {
  method: 'GET' | 'POST';
  path: string;
  body?: string;
  headers?: Record<string, string>;
}

export interface DriveOptions {
  /** Requests a second, evenly spaced. */
  rate: number;
  durationMs: number;
  /** The path of request i (a GET), or the whole request. */
  path(i: number): string | Request;
  connections?: number;
  /** A request not answered within this is counted as a hang (status 0). */
  timeoutMs?: number;
}

/**
 * A steady load: `rate` requests a second for `durationMs`, none waiting for another's answer.
 * `sent` fills as requests leave (a scenario looks at it while the load runs).
 */
export function startDrive(base: string, options: DriveOptions): { sent: Sent[]; done: Promise<Sent[]> } {
  const results: Sent[] = [];
  return { sent: results, done: run(base, options, results) };
}

export async function drive(base: string, options: DriveOptions): Promise<Sent[]> {
  return startDrive(base, options).done;
}

async function run(base: string, options: DriveOptions, results: Sent[]): Promise<Sent[]> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const pool = new Pool(base, {
    connections: options.connections ?? 128,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    connect: { timeout: timeoutMs },
  });
  const total = Math.round((options.rate * options.durationMs) / 1000);
  const started = now();
  const inFlight: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const wait = started + (i * 1000) / options.rate - now();
    if (wait > 0) await sleep(wait);
    const given = options.path(i);
    const request: Request = typeof given === 'string' ? { method: 'GET', path: given } : given;
    const sent: Sent = { i, path: request.path, sentAt: now(), doneAt: 0, status: 0 };
    results.push(sent);
    inFlight.push(
      pool.request(request).then(
        async (res) => {
          await res.body.dump();
          sent.status = res.statusCode;
          sent.doneAt = now();
        },
        (error: Error) => {
          sent.error = error.message;
          sent.doneAt = now();
        },
      ),
    );
  }
  await Promise.all(inFlight);
  await pool.close();
  return results;
}

/** Counts by status ("0" for no answer), in status order: `202: 4,210, 503: 12`. */
export function statusCounts(sent: readonly Sent[]): string {
  const counts = new Map<number, number>();
  for (const s of sent) counts.set(s.status, (counts.get(s.status) ?? 0) + 1);
  return [...counts.entries()]
    .sort(([a], [b]) => a - b)
    .map(([status, count]) => `${status === 0 ? 'no answer' : status}: ${count.toLocaleString('en-US')}`)
    .join(', ');
}

export const accepted = (s: Sent) => s.status >= 200 && s.status < 300;
