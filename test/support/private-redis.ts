import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';

/**
 * A redis-server of a test's own, on a free port, with no persistence: a test may FLUSHALL it (or
 * kill it) without touching the shared Redis at 6379.
 */
export interface PrivateRedis {
  url: string;
  port: number;
  /** FLUSHALL on this server only. */
  flushAll(): Promise<void>;
  /** A client for this server (the caller disconnects it). */
  client(): Redis;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

async function ping(url: string): Promise<boolean> {
  const redis = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 500,
  });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    return (await redis.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    redis.disconnect();
  }
}

export async function startPrivateRedis(): Promise<PrivateRedis> {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const url = `redis://127.0.0.1:${port}`;
    const child: ChildProcess = spawn(
      'redis-server',
      ['--port', String(port), '--save', '', '--appendonly', 'no', '--bind', '127.0.0.1', '--protected-mode', 'no'],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let exited = false;
    child.once('exit', () => {
      exited = true;
    });
    const deadline = Date.now() + 5_000;
    while (!exited && Date.now() < deadline && !(await ping(url)))
      await new Promise((resolve) => setTimeout(resolve, 50));
    if (exited || Date.now() >= deadline) {
      child.kill('SIGKILL');
      if (attempt < 2) continue; // the port was taken in between: try another
      throw new Error('could not start a private redis-server');
    }
    return {
      url,
      port,
      flushAll: async () => {
        const redis = new Redis(url);
        try {
          await redis.flushall();
        } finally {
          redis.disconnect();
        }
      },
      client: () => new Redis(url),
      stop: async () => {
        if (exited) return;
        const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 3_000);
        await gone;
        clearTimeout(timer);
      },
    };
  }
}
