import { defineConfig } from 'vitest/config';

// Two projects, both run by `npm test`: unit tests need nothing but Node (no database, no Redis,
// fake timers); integration tests run against the real PostgreSQL and Redis of this machine.
export default defineConfig({
  test: {
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
          testTimeout: 30_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
