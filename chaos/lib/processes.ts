import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

// The suite runs compiled (`npm run chaos` builds first), as production runs `node dist/…`.
const DIST = new URL('../../', import.meta.url);

export interface FlowpostProcess {
  name: string;
  process: ChildProcess;
  /** SIGKILL, and wait until it is gone. */
  kill(): Promise<void>;
  /** SIGTERM (then SIGKILL after 10 s), and wait until it is gone. */
  stop(): Promise<void>;
}

/** Runs an entry point (`src/cli/worker.ts`: its compiled JavaScript), its output appended to `logFile`. */
export function runFlowpost(
  name: string,
  script: string,
  env: Record<string, string>,
  logFile: string,
): FlowpostProcess {
  const compiled = new URL(script.replace(/\.ts$/, '.js'), DIST).pathname;
  const log = openSync(logFile, 'a');
  const child = spawn(process.execPath, [compiled], {
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', log, log],
  });
  closeSync(log);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const signal = async (sig: NodeJS.Signals, graceMs: number) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill(sig);
    await Promise.race([exited, sleep(graceMs).then(() => child.kill('SIGKILL'))]);
    await exited;
  };
  return { name, process: child, kill: () => signal('SIGKILL', 5_000), stop: () => signal('SIGTERM', 10_000) };
}
