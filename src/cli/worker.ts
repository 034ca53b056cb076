import { createDb, databaseTarget } from '../db/connection.js';
import { loadConfigOrExit, onShutdown, processLogger } from './process.js';
import { startWorkerMetricsServer } from '../observability/metrics-server.js';
import { startWorkerTier } from '../workers/worker-tier.js';

const config = loadConfigOrExit();
const log = processLogger(config, 'worker');
const db = createDb(databaseTarget(config), {}, log);
const workers = await startWorkerTier(config, db, log);
// A worker has no web port on Heroku: its own metrics and /readyz are served on METRICS_PORT when set.
const metrics =
  config.metricsPort === undefined
    ? null
    : await startWorkerMetricsServer(config, db, log.child({ component: 'metrics' }), workers.workers);
onShutdown(log, async () => {
  await metrics?.close();
  await workers.close();
  await db.destroy();
});
