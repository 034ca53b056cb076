import { readdirSync, readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisScript, scripts } from '../../src/redis/scripts.js';
import { startPrivateRedis, type PrivateRedis } from '../support/private-redis.js';

const LUA_DIR = new URL('../../src/redis/lua/', import.meta.url);

describe('Lua scripts', () => {
  let server: PrivateRedis;
  let redis: Redis;

  beforeAll(async () => {
    server = await startPrivateRedis();
    redis = server.client();
  });

  afterAll(async () => {
    redis.disconnect();
    await server.stop();
  });

  it('every .lua file is loaded, named <name>-<keys>, and opens with a header naming its KEYS, ARGV and output', () => {
    const files = readdirSync(LUA_DIR).filter((file) => file.endsWith('.lua'));
    const loaded = Object.values(scripts).map((script) => `${script.name}-${script.numberOfKeys}.lua`);
    expect(files.sort()).toEqual([...loaded].sort());
    for (const file of files) {
      // A script's flags line (`#!lua flags=…`) comes before its header.
      const header = readFileSync(new URL(file, LUA_DIR), 'utf8')
        .replace(/^#!lua[^\n]*\n/, '')
        .split(']]')[0]!;
      expect(header, file).toMatch(/^--\[\[/);
      expect(header, file).toMatch(/KEYS\[1\]/);
      expect(header, file).toMatch(/Output:/);
    }
  });

  it('runs by SHA, and sends the script again when Redis has forgotten it (restart, SCRIPT FLUSH)', async () => {
    const counter = 'test:counter';
    const reset = 'test:reset';
    await redis.set(counter, '3');
    await scripts.raiseSequenceFloor.run(redis, [counter, reset], [10]);
    expect(await redis.get(counter)).toBe('10');
    expect(await redis.script('EXISTS', scripts.raiseSequenceFloor.sha)).toEqual([1]);

    await redis.script('FLUSH');
    await server.flushAll();
    expect(await redis.script('EXISTS', scripts.raiseSequenceFloor.sha)).toEqual([0]);
    await scripts.raiseSequenceFloor.run(redis, [counter, reset], [7]);
    expect(Number(await redis.get(counter))).toBeGreaterThanOrEqual(7);
    expect(await redis.script('EXISTS', scripts.raiseSequenceFloor.sha)).toEqual([1]);
  });

  it('refuses a call with the wrong number of keys before reaching Redis', async () => {
    const script = new RedisScript('twoKeys', 2, 'return 1');
    await expect(script.run(redis, ['only-one'], [])).rejects.toThrow(/takes 2 keys, got 1/);
  });

  it('passes other Redis errors on', async () => {
    const script = new RedisScript('broken', 1, "return redis.call('INCR', KEYS[1])");
    await redis.set('test:text', 'not a number');
    await expect(script.run(redis, ['test:text'], [])).rejects.toThrow(/not an integer/);
  });
});
