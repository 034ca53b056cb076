import { defineConfig } from 'vitest/config';

// Two projects, both run by `npm test`: unit tests need nothing but Node (no database, no Redis,
// fake timers); integration tests run against the real PostgreSQL and Redis of this machine, each
// file in a database of its own and under BullMQ prefixes of its own, so files run side by side.
export default defineConfig({
  test: {
    // Integration files mostly wait on Postgres, Redis, sockets and timers: more files than cores
    // at once shortens the run (vitest's default on 2 cores is one file at a time).
    maxWorkers: 8,
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          globalSetup: ['test/support/global-setup.ts'],
          setupFiles: ['test/support/file-database.ts'],
          testTimeout: 30_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
