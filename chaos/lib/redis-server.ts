import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { freePort } from '../../bench/lib/processes.js';
import { redisAnswers } from '../../test/support/private-redis.js';

/**
 * A redis-server of the scenario's own that can be killed and started again on the same port and
 * data directory (test/support/private-redis.ts has no persistence and no restart).
 */
export interface RedisServer {
  url: string;
  port: number;
  dir: string;
  /** A client (the caller disconnects it). */
  client(): Redis;
  /** SIGKILL: no shutdown save, no AOF rewrite; what a crashed host looks like. */
  kill(): Promise<void>;
  /** Starts it again on the same port and directory; resolves once it answers PING (after loading). */
  start(): Promise<void>;
  destroy(): Promise<void>;
}

export interface RedisServerOptions {
  /** `appendonly yes` with `appendfsync everysec`. */
  aof?: boolean;
}

export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  const dir = await mkdtemp(join(tmpdir(), 'flowpost-chaos-redis-'));
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--protected-mode',
    'no',
    '--dir',
    dir,
    '--save',
    '',
    ...(options.aof ? ['--appendonly', 'yes', '--appendfsync', 'everysec'] : ['--appendonly', 'no']),
  ];
  let child: ChildProcess | null = null;

  const start = async () => {
    const started = spawn('redis-server', args, { stdio: ['ignore', 'ignore', 'ignore'] });
    child = started;
    const deadline = Date.now() + 10_000;
    while (!(await redisAnswers(url))) {
      if (started.exitCode !== null || Date.now() > deadline) throw new Error(`redis-server on ${port} did not start`);
      await sleep(20);
    }
  };
  const kill = async () => {
    const running = child;
    if (!running || running.exitCode !== null) return;
    const gone = new Promise((resolve) => running.once('exit', resolve));
    running.kill('SIGKILL');
    await gone;
  };
  await start();
  return {
    url,
    port,
    dir,
    client: () => new Redis(url),
    kill,
    start,
    destroy: async () => {
      await kill();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
