const DEADLOCK = '40P01';
const SERIALIZATION = '40001';

/**
 * Runs a statement, or a whole transaction, again (up to `attempts` times) when Postgres broke a
 * deadlock or a serialization conflict by failing it.
 */
export async function retryingDeadlocks<T>(run: () => Promise<T>, attempts = 5): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run();
    } catch (error) {
      const code = (error as { code?: string }).code;
      if ((code === DEADLOCK || code === SERIALIZATION) && attempt < attempts) continue;
      throw error;
    }
  }
}
