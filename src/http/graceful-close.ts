import net from 'node:net';
import type { Server, ServerResponse } from 'node:http';

export interface GracefulCloseOptions {
  /** How long idle keep-alive connections stay open for a request a client may be sending right now. */
  idleGraceMs?: number;
  /** When the connections still open are cut, so the process ends before the platform kills it (Heroku: 30 s). */
  drainLimitMs?: number;
}

async function settlesWithin(promise: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  const done = await Promise.race([promise.then(() => true as const), late]);
  clearTimeout(timer);
  return done;
}

/**
 * Prepares `server` for a graceful close and returns it: no new connections; every request
 * already sent is answered, with `Connection: close` so that clients stop reusing the connection.
 * Node's own `server.close()` destroys idle keep-alive connections at once, which cuts off a
 * request a client is writing on one at that moment; here they get `idleGraceMs` first.
 */
export function gracefulCloser(server: Server, options: GracefulCloseOptions = {}): () => Promise<void> {
  const idleGraceMs = options.idleGraceMs ?? 1_000;
  const drainLimitMs = options.drainLimitMs ?? 20_000;
  let closing = false;
  const inFlight = new Set<ServerResponse>();
  // One listener for every response (no closure per request: this runs for every postback).
  function answered(this: ServerResponse): void {
    inFlight.delete(this);
  }
  server.prependListener('request', (_request, response: ServerResponse) => {
    if (closing) response.setHeader('connection', 'close');
    inFlight.add(response);
    response.on('close', answered);
  });
  return async () => {
    closing = true;
    for (const response of inFlight) if (!response.headersSent) response.setHeader('connection', 'close');
    // The listening socket only (net's close): the open connections are handled below.
    const closed = new Promise<void>((resolve) => net.Server.prototype.close.call(server, () => resolve()));
    const deadline = Date.now() + drainLimitMs;
    if (await settlesWithin(closed, idleGraceMs)) return;
    // Still idle after the grace: nothing is on its way on them (answered ones close by themselves).
    while (Date.now() < deadline) {
      server.closeIdleConnections();
      if (await settlesWithin(closed, 100)) return;
    }
    server.closeAllConnections();
    await closed;
  };
}
