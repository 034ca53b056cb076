// A fake Telegram Bot API for the broadcast bench that enforces a per-bot rate, answering 429 with
// retry_after beyond it as Telegram does (a refused call does not count against the rate). Two
// ways to enforce RATE sendMessage calls a second per token:
//   MODE=bucket (default): a token bucket of BURST (default 10) refilled at RATE a second: a sender
//     pacing at RATE may arrive up to BURST / RATE seconds unevenly (33 ms at 300/s);
//   MODE=window: at most RATE in any sliding 1 s window: a sender pacing at exactly RATE draws a
//     429 whenever a send arrives later than the one 300 before it (network and event-loop jitter).
// Every other method answers `true` (getMe a bot). GET /_arrivals lists the accepted sendMessage
// calls ([arrival ms, chat id, text]) and the refused ones ([arrival ms, chat id]).
import { createServer } from 'node:http';

const ratePerSecond = Number(process.env.RATE ?? 300);
const mode = process.env.MODE === 'window' ? 'window' : 'bucket';
const burst = Number(process.env.BURST ?? 10);
const WINDOW_MS = 1_000;

/** Arrival times of a token's accepted sends within the last window, oldest first. */
const windows = new Map<string, { at: number[]; head: number }>();
const accepted: Array<[number, number, string]> = [];
const refused: Array<[number, number]> = [];
let messageId = 0;

// Wall-clock milliseconds with sub-millisecond precision, comparable across processes.
const now = () => performance.timeOrigin + performance.now();

/** Each token's bucket: how full it was, when. */
const buckets = new Map<string, { tokens: number; at: number }>();

/** Takes a token from the token's bucket, or tells after how many whole seconds one is there. */
function admitBucket(token: string, at: number): { ok: true } | { ok: false; retryAfter: number } {
  const bucket = buckets.get(token) ?? { tokens: burst, at };
  bucket.tokens = Math.min(burst, bucket.tokens + ((at - bucket.at) * ratePerSecond) / 1_000);
  bucket.at = at;
  buckets.set(token, bucket);
  if (bucket.tokens < 1) return { ok: false, retryAfter: Math.max(1, Math.ceil((1 - bucket.tokens) / ratePerSecond)) };
  bucket.tokens -= 1;
  return { ok: true };
}

/** Takes a place in the token's window, or tells after how many whole seconds one frees up. */
function admitWindow(token: string, at: number): { ok: true } | { ok: false; retryAfter: number } {
  let window = windows.get(token);
  if (!window) windows.set(token, (window = { at: [], head: 0 }));
  while (window.head < window.at.length && window.at[window.head]! <= at - WINDOW_MS) window.head++;
  if (window.head > 4_096) {
    window.at = window.at.slice(window.head);
    window.head = 0;
  }
  if (window.at.length - window.head >= ratePerSecond) {
    const frees = window.at[window.head]! + WINDOW_MS - at;
    return { ok: false, retryAfter: Math.max(1, Math.ceil(frees / 1_000)) };
  }
  window.at.push(at);
  return { ok: true };
}

function params(body: string, contentType: string): Record<string, unknown> {
  if (body === '') return {};
  if (contentType.includes('application/json')) return JSON.parse(body) as Record<string, unknown>;
  return Object.fromEntries(new URLSearchParams(body));
}

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    const at = now();
    const answer = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.url === '/_arrivals') return answer(200, { accepted, refused });
    const route = /^\/bot([^/]+)\/([A-Za-z]+)$/.exec(req.url ?? '');
    if (!route) return answer(404, { ok: false, error_code: 404, description: 'Not Found' });
    const token = decodeURIComponent(route[1]!);
    const botId = Number(token.split(':')[0]);
    const bot = { id: botId, is_bot: true, first_name: `Bot ${botId}`, username: `bot${botId}` };
    if (route[2] === 'getMe') return answer(200, { ok: true, result: bot });
    if (route[2] !== 'sendMessage') return answer(200, { ok: true, result: true });
    const call = params(Buffer.concat(chunks).toString('utf8'), String(req.headers['content-type'] ?? ''));
    const chatId = Number(call.chat_id);
    const text = typeof call.text === 'string' ? call.text : '';
    const admitted = mode === 'bucket' ? admitBucket(token, at) : admitWindow(token, at);
    if (!admitted.ok) {
      refused.push([at, chatId]);
      return answer(429, {
        ok: false,
        error_code: 429,
        description: `Too Many Requests: retry after ${admitted.retryAfter}`,
        parameters: { retry_after: admitted.retryAfter },
      });
    }
    accepted.push([at, chatId, text]);
    answer(200, {
      ok: true,
      result: {
        message_id: ++messageId,
        date: Math.floor(at / 1_000),
        chat: { id: chatId, type: 'private', first_name: 'Reader' },
        from: bot,
        text,
      },
    });
  });
});
server.keepAliveTimeout = 65_000;
server.listen(Number(process.env.PORT), '127.0.0.1');
