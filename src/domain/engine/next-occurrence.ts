/** Wall-clock arithmetic in an IANA time zone, with Intl only (no time zone database of our own). */

const HH_MM = /^([01]\d|2[0-3]):([0-5]\d)$/;
const DAY_MS = 24 * 60 * 60 * 1000;

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timezone: string): Intl.DateTimeFormat {
  let format = formatters.get(timezone);
  if (format === undefined) {
    // Throws RangeError for an unknown time zone.
    format = new Intl.DateTimeFormat('en-US', {
      timeZone: timezone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timezone, format);
  }
  return format;
}

/** Whether Intl knows the time zone. */
export function isValidTimeZone(timezone: string): boolean {
  try {
    formatter(timezone);
    return true;
  } catch {
    return false;
  }
}

/** The wall clock in `timezone` at instant `ms` (whole seconds), written as if it were UTC. */
function wallClock(timezone: string, ms: number): number {
  const parts: Record<string, number> = {};
  for (const part of formatter(timezone).formatToParts(new Date(ms))) {
    if (part.type !== 'literal') parts[part.type] = Number(part.value);
  }
  const year = parts.year ?? 1970;
  const date = new Date(0);
  date.setUTCFullYear(year, (parts.month ?? 1) - 1, parts.day ?? 1);
  date.setUTCHours(parts.hour ?? 0, parts.minute ?? 0, parts.second ?? 0, 0);
  return date.getTime();
}

/** Offset of `timezone` from UTC at instant `ms`, in ms (wall clock − UTC). */
function offsetAt(timezone: string, ms: number): number {
  const whole = Math.floor(ms / 1000) * 1000;
  return wallClock(timezone, whole) - whole;
}

/**
 * The instants at which the wall clock in `timezone` shows `wall` (a UTC-labelled wall time), earliest
 * first: one normally, two in a fall-back overlap. In a spring-forward gap the wall time never shows;
 * then the one instant returned is `wall` read with the offset before the gap (it shows `wall` + the gap,
 * e.g. 02:30 → 03:30), as Temporal's "compatible" disambiguation and cron do.
 */
function instantsOf(timezone: string, wall: number): number[] {
  const before = offsetAt(timezone, wall - DAY_MS);
  const after = offsetAt(timezone, wall + DAY_MS);
  const found = new Set<number>();
  for (const offset of [before, after]) {
    const instant = wall - offset;
    if (wallClock(timezone, instant) === wall) found.add(instant);
  }
  if (found.size === 0) return [wall - before];
  return [...found].sort((a, b) => a - b);
}

/**
 * The next time, strictly after `now`, that the wall clock in `timezone` shows `hhmm` ("HH:MM", 00:00–23:59).
 * DST-correct: a time skipped by a spring-forward change is taken as the same moment shifted by the gap;
 * a time shown twice by a fall-back change is found at each of its two instants.
 * @throws RangeError for a malformed `hhmm`, an unknown time zone or an invalid `now`.
 */
export function nextOccurrence(hhmm: string, timezone: string, now: Date): Date {
  const match = HH_MM.exec(hhmm);
  if (match === null) throw new RangeError(`"${hhmm}" is not a time as HH:MM`);
  const nowMs = now.getTime();
  if (Number.isNaN(nowMs)) throw new RangeError('now is an invalid date');
  const hour = Number(match[1]);
  const minute = Number(match[2]);
  const today = new Date(wallClock(timezone, nowMs));
  for (let day = -1; day <= 3; day++) {
    const wall = Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate() + day, hour, minute);
    for (const instant of instantsOf(timezone, wall)) {
      if (instant > nowMs) return new Date(instant);
    }
  }
  // Unreachable for real zones: some day within the next three shows every time.
  throw new RangeError(`no next ${hhmm} found in ${timezone}`);
}
