// A fake Telegram Bot API for the broadcast bench that enforces a per-bot rate as Telegram does:
// at most RATE sendMessage calls of one token in any sliding 1 s window (accepted calls only; a
// refused one does not count), and beyond it 429 with retry_after, as Telegram answers. Every
// other method answers `true` (getMe a bot). GET /_arrivals lists the accepted sendMessage calls
// ([arrival ms, chat id, text]) and the refused ones ([arrival ms, chat id]).
import { createServer } from 'node:http';

const ratePerSecond = Number(process.env.RATE ?? 300);
const WINDOW_MS = 1_000;

/** Arrival times of a token's accepted sends within the last window, oldest first. */
const windows = new Map<string, { at: number[]; head: number }>();
const accepted: Array<[number, number, string]> = [];
const refused: Array<[number, number]> = [];
let messageId = 0;

// Wall-clock milliseconds with sub-millisecond precision, comparable across processes.
const now = () => performance.timeOrigin + performance.now();

/** Takes a place in the token's window, or tells after how many whole seconds one frees up. */
function admit(token: string, at: number): { ok: true } | { ok: false; retryAfter: number } {
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
    const admitted = admit(token, at);
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
