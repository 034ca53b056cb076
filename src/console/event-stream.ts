import type { Context } from 'koa';
import type { RequestState } from '../observability/request-context.js';
import type { TranscriptEvent } from './transcript-stream.js';

/** Open event streams one web process serves at most; more are refused (503) until some close. */
const MAX_EVENT_STREAMS = 200;

/** How long a browser waits before reconnecting a stream that ended. */
const RECONNECT_MS = 3_000;

interface Streams {
  open: Set<AbortController>;
  closing: boolean;
}

// Per Koa application (one per web tier), so that closing a web tier ends its streams only.
const streamsByApp = new WeakMap<object, Streams>();

function streamsOf(app: object): Streams {
  let streams = streamsByApp.get(app);
  if (!streams) {
    streams = { open: new Set(), closing: false };
    streamsByApp.set(app, streams);
  }
  return streams;
}

/** One server-sent event (text/event-stream framing); a heartbeat is a comment line. */
export function formatEvent(event: TranscriptEvent): string {
  switch (event.type) {
    case 'line':
      return `id: ${event.line.id}\nevent: line\ndata: ${JSON.stringify(event.line)}\n\n`;
    case 'dialog':
      return `event: dialog\ndata: ${JSON.stringify(event.dialog)}\n\n`;
    case 'heartbeat':
      return ': heartbeat\n\n';
  }
}

/**
 * Answers with a server-sent event stream that `run` writes to until it resolves, the client goes
 * away, or the web tier closes (endEventStreams). Refused with 503 beyond MAX_EVENT_STREAMS.
 */
export function sendEventStream(
  ctx: Context,
  run: (emit: (event: TranscriptEvent) => void, signal: AbortSignal) => Promise<void>,
): void {
  const streams = streamsOf(ctx.app);
  if (streams.closing || streams.open.size >= MAX_EVENT_STREAMS) {
    ctx.status = 503;
    ctx.set('Retry-After', '10');
    ctx.type = 'text/plain';
    ctx.body = streams.closing ? 'this web process is closing' : 'too many open event streams';
    return;
  }
  const controller = new AbortController();
  streams.open.add(controller);
  const res = ctx.res;
  const stop = () => controller.abort();
  res.once('close', stop);
  // A stream stays open for as long as the page does: no idle timeout on its socket.
  ctx.req.socket.setTimeout(0);
  ctx.status = 200;
  ctx.type = 'text/event-stream';
  ctx.set('X-Accel-Buffering', 'no');
  // Written here, not piped by Koa: a reader leaving is how every stream ends, not an error to report.
  ctx.respond = false;
  const write = (text: string) => {
    if (!controller.signal.aborted && !res.destroyed) res.write(text);
  };
  write(`retry: ${RECONNECT_MS}\n\n`);
  void run((event) => write(formatEvent(event)), controller.signal)
    .catch((error: unknown) => (ctx.state as RequestState).log.warn({ err: error }, 'event stream failed'))
    .finally(() => {
      streams.open.delete(controller);
      res.off('close', stop);
      if (!res.destroyed) res.end();
    });
}

/** Ends every open stream of this web tier and refuses new ones: open streams must not hold up its close. */
export function endEventStreams(app: object): void {
  const streams = streamsOf(app);
  streams.closing = true;
  for (const controller of streams.open) controller.abort();
}
