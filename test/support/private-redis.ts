import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis, type RedisOptions } from 'ioredis';
import { freePort } from './free-port.js';

/**
 * A redis-server of a test's own, on a free port, with no persistence: a test may FLUSHALL it (or
 * kill it) without touching the shared Redis at 6379.
 */
export interface PrivateRedis {
  /** `redis://…`, or `rediss://…` for a TLS server. */
  url: string;
  port: number;
  /** FLUSHALL on this server only. */
  flushAll(): Promise<void>;
  /** A client for this server (the caller disconnects it); it trusts the self-signed certificate of a TLS server. */
  client(): Redis;
  stop(): Promise<void>;
  /** The server's self-signed certificate (PEM), for a TLS server. */
  certificatePath?: string;
}

export interface PrivateRedisOptions {
  /** Serve TLS only (no plain port), with a fresh self-signed certificate for CN=localhost, as managed Redis does. */
  tls?: boolean;
  /** More redis-server arguments, e.g. `['--maxmemory', '2mb', '--maxmemory-policy', 'noeviction']`. */
  args?: string[];
}

/** Whether a redis-server answers PING at `url` now (false while it starts or loads its AOF). */
export async function redisAnswers(url: string, options: RedisOptions = {}): Promise<boolean> {
  const redis = new Redis(url, {
    ...options,
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

async function selfSignedCertificate(dir: string): Promise<{ cert: string; key: string }> {
  const cert = join(dir, 'redis.crt');
  const key = join(dir, 'redis.key');
  await promisify(execFile)('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '2',
    '-subj',
    '/CN=localhost',
    '-keyout',
    key,
    '-out',
    cert,
  ]);
  return { cert, key };
}

export async function startPrivateRedis(options: PrivateRedisOptions = {}): Promise<PrivateRedis> {
  const dir = options.tls ? await mkdtemp(join(tmpdir(), 'flowpost-redis-')) : undefined;
  const certificate = dir ? await selfSignedCertificate(dir) : undefined;
  const clientOptions: RedisOptions = certificate ? { tls: { rejectUnauthorized: false } } : {};
  const removeDir = async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  };
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const url = `${certificate ? 'rediss' : 'redis'}://127.0.0.1:${port}`;
    const listen = certificate
      ? [
          '--port',
          '0',
          '--tls-port',
          String(port),
          '--tls-cert-file',
          certificate.cert,
          '--tls-key-file',
          certificate.key,
          '--tls-auth-clients',
          'no',
        ]
      : ['--port', String(port)];
    const child: ChildProcess = spawn(
      'redis-server',
      [
        ...listen,
        '--save',
        '',
        '--appendonly',
        'no',
        '--bind',
        '127.0.0.1',
        '--protected-mode',
        'no',
        ...(options.args ?? []),
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let exited = false;
    child.once('exit', () => {
      exited = true;
    });
    const deadline = Date.now() + 5_000;
    while (!exited && Date.now() < deadline && !(await redisAnswers(url, clientOptions)))
      await new Promise((resolve) => setTimeout(resolve, 50));
    if (exited || Date.now() >= deadline) {
      child.kill('SIGKILL');
      if (attempt < 2) continue; // the port was taken in between: try another
      await removeDir();
      throw new Error('could not start a private redis-server');
    }
    const client = () => new Redis(url, clientOptions);
    return {
      url,
      port,
      ...(certificate ? { certificatePath: certificate.cert } : {}),
      flushAll: async () => {
        const redis = client();
        try {
          await redis.flushall();
        } finally {
          redis.disconnect();
        }
      },
      client,
      stop: async () => {
        if (!exited) {
          const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 3_000);
          await gone;
          clearTimeout(timer);
        }
        await removeDir();
      },
    };
  }
}
