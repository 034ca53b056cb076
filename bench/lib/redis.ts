import { dropPrefix as drop } from '../../src/redis/drop-prefix.js';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

export async function dropPrefix(prefix: string): Promise<void> {
  await drop(REDIS_URL, prefix);
}
