import { BaseSequencer, type TestSpecification } from 'vitest/node';
import { defineConfig } from 'vitest/config';

/**
 * The integration files that wait longest (on delays, retries, worker processes), longest first.
 * They start before the rest, so none of them is left to run alone at the end of the run, also
 * on a machine with no timings cached from an earlier run.
 */
const SLOW_FIRST = [
  'dialog-order-interleaving-runs-',
  'outbound-delivery.test',
  'script-runs',
  'dialog-order.test',
  'outbound-delivery-crash',
  'postback-guarantees',
  'postback-contract',
  'redis-loss',
  'telegram',
  'config',
  'dialog-order-interleaving.test',
  'management-api',
];

class SlowFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const rank = (file: TestSpecification) => {
      const index = SLOW_FIRST.findIndex((name) => file.moduleId.includes(`/${name}`));
      return index < 0 ? SLOW_FIRST.length : index;
    };
    return sorted
      .map((file, order) => ({ file, order }))
      .sort((a, b) => rank(a.file) - rank(b.file) || a.order - b.order)
      .map(({ file }) => file);
  }
}

// Two projects, both run by `npm test`: unit tests need nothing but Node (no database, no Redis,
// fake timers); integration tests run against the real PostgreSQL and Redis of this machine, each
// file in a database of its own and under BullMQ prefixes of its own, so files run side by side.
export default defineConfig({
  test: {
    // Integration files mostly wait on Postgres, Redis, sockets and timers: more files than cores
    // at once shortens the run (vitest's default on 2 cores is one file at a time). Six take about as
    // long as ten did, with much less contention for the two cores: the files that start processes,
    // browsers and clusters leave the timing-bound tests room.
    maxWorkers: 6,
    // Files run one after another in a worker share its loaded modules (importing flowpost again for
    // every file took half the run's CPU). A test restores any global it changes (process.env.TZ).
    sequence: { sequencer: SlowFirst },
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          isolate: false,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts', 'test/browser/**/*.test.ts'],
          isolate: false,
          globalSetup: ['test/support/global-setup.ts'],
          setupFiles: ['test/support/file-database.ts'],
          testTimeout: 30_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
