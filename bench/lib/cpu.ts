import { readFileSync } from 'node:fs';

/** CPU time (user + system, ms) a process has used so far; null where /proc is not there. */
function processCpuMs(pid: number): number | null {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    // utime and stime, in clock ticks (USER_HZ, 100 a second on Linux).
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return null;
  }
}

/** The machine's busy and total CPU ticks so far (all cores); null where /proc is not there. */
function machineTicks(): { busy: number; total: number } | null {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const total = fields.reduce((sum, value) => sum + value, 0);
    return { busy: total - fields[3]! - fields[4]!, total };
  } catch {
    return null;
  }
}

export interface CpuUse {
  /** CPU ms each watched process used over the span. */
  processMs: (number | null)[];
  /** Share of all the machine's cores busy over the span (0–100). */
  machineBusyPct: number | null;
}

/** Starts watching the CPU the given processes and the whole machine use; `stop` reads it off. */
export function watchCpu(pids: number[]): { stop(): CpuUse } {
  const before = pids.map(processCpuMs);
  const machineBefore = machineTicks();
  return {
    stop: () => {
      const machineAfter = machineTicks();
      return {
        processMs: pids.map((pid, i) => {
          const now = processCpuMs(pid);
          const then = before[i];
          return now === null || then === null || then === undefined ? null : now - then;
        }),
        machineBusyPct:
          machineBefore && machineAfter
            ? (100 * (machineAfter.busy - machineBefore.busy)) / Math.max(1, machineAfter.total - machineBefore.total)
            : null,
      };
    },
  };
}
