/**
 * The metrics port of a process without a web tier (a worker process, which on Heroku has no HTTP
 * port of its own): GET /metrics, /readyz and /healthz on a plain node:http server.
 */
import { once } from 'node:events';
import http from 'node:http';
import type { Worker } from 'bullmq';
import type { Knex } from 'knex';
import type { Config } from '../config/env.js';
import type { Logger } from '../config/log.js';
import { METRICS_UNAUTHORIZED, metricsAuthorized } from '../http/auth.js';
import { createProducerConnection, redisTarget } from '../redis/connection.js';
import { pausedQueues } from '../workers/pause-on-outage.js';
import { registry } from './metrics.js';
import { checkReadiness, postgresCheck, redisCheck, workersCheck, type Readiness } from './readiness.js';

export interface MetricsServer {
  port: number;
  close(): Promise<void>;
}

export interface MetricsServerOptions {
  port: number;
  /** Bearer token /metrics requires, when set. */
  token: string | undefined;
  readiness(): Promise<Readiness>;
  log: Logger;
}

function answerJson(
  response: http.ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
) {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  response.end(text);
}

async function handle(options: MetricsServerOptions, request: http.IncomingMessage, response: http.ServerResponse) {
  const path = (request.url ?? '/').split('?')[0];
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    return answerJson(
      response,
      405,
      { ok: false, error: { code: 'method_not_allowed', message: 'use GET' } },
      {
        allow: 'GET, HEAD',
      },
    );
  }
  if (path === '/metrics') {
    if (!metricsAuthorized(request.headers.authorization, options.token))
      return answerJson(response, 401, METRICS_UNAUTHORIZED, { 'www-authenticate': 'Bearer' });
    const text = await registry.metrics();
    response.writeHead(200, { 'content-type': registry.contentType, 'content-length': Buffer.byteLength(text) });
    return response.end(text);
  }
  if (path === '/readyz') {
    const readiness = await options.readiness();
    return answerJson(response, readiness.ok ? 200 : 503, readiness);
  }
  if (path === '/healthz') return answerJson(response, 200, { ok: true });
  return answerJson(response, 404, { ok: false, error: { code: 'not_found', message: 'no such route' } });
}

async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const server = http.createServer((request, response) => {
    handle(options, request, response).catch((error: unknown) => {
      options.log.error({ err: error }, 'metrics request failed');
      if (!response.headersSent)
        answerJson(response, 500, { ok: false, error: { code: 'internal_error', message: 'internal error' } });
      else response.destroy();
    });
  });
  server.listen(options.port, '0.0.0.0');
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  options.log.info({ port }, 'metrics listening');
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * A worker process's metrics port (METRICS_PORT): its own metrics, and /readyz over Postgres, Redis
 * (on a connection of its own that fails fast) and its workers' outage pauses.
 */
export async function startWorkerMetricsServer(
  config: Config,
  db: Knex,
  log: Logger,
  workers: readonly Worker[],
  port = config.metricsPort ?? 0,
): Promise<MetricsServer> {
  const redis = createProducerConnection(redisTarget(config), `${config.queuePrefix}:metrics`);
  redis.on('error', (error) => log.debug({ err: error }, 'redis connection error'));
  const checks = {
    postgres: postgresCheck(db),
    redis: redisCheck(redis),
    workers: workersCheck(() => pausedQueues(workers)),
  };
  const server = await startMetricsServer({
    port,
    token: config.metricsToken,
    readiness: () => checkReadiness(checks),
    log,
  });
  return {
    port: server.port,
    close: async () => {
      await server.close();
      redis.disconnect();
    },
  };
}
