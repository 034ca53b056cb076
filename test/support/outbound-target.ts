import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Queue } from 'bullmq';
import type { Knex } from 'knex';
import type { OutboundBatchJob, OutboundDeliveryJob } from '../../src/jobs/outbound-delivery-job.js';
import { QUEUES } from '../../src/jobs/queue-names.js';
import { DeliveryRecorder } from '../../src/outbound/delivery-recorder.js';
import { REDIS_URL } from './harness.js';

// A local HTTP target for outbound deliveries, and a recorder of deliveries into a prefix's queues.

export type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;

export interface Target {
  url: string;
  requests: Array<{ method: string; url: string; headers: IncomingMessage['headers']; body: string; at: number }>;
  connections: number;
  handle: Handler;
  close(): Promise<void>;
}

export async function startTarget(handle: Handler, host = '127.0.0.1'): Promise<Target> {
  const target = { requests: [], connections: 0, handle } as unknown as Target;
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      target.requests.push({ method: req.method!, url: req.url!, headers: req.headers, body, at: Date.now() });
      target.handle(req, res, body);
    });
  });
  server.on('connection', () => target.connections++);
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  target.url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  target.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return target;
}

export const answer =
  (status: number, headers: Record<string, string> = {}) =>
  (_req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(status, headers);
    res.end(`answer ${status}`);
  };

/** Records deliveries the way a worker's script runs do, into the queues under `prefix`. */
export function recorderFor(db: Knex, prefix: string) {
  const chains = new Queue<OutboundDeliveryJob>(QUEUES.outboundWebhooks, { connection: { url: REDIS_URL }, prefix });
  const batches = new Queue<OutboundBatchJob>(QUEUES.outboundBatches, { connection: { url: REDIS_URL }, prefix });
  return {
    chains,
    batches,
    recorder: new DeliveryRecorder(db, { chains, batches }),
    close: () => Promise.all([chains.close(), batches.close()]),
  };
}
