import autocannon from 'autocannon';

export interface LoadFigures {
  reqPerSec: number;
  p50: number;
  p99: number;
  /** Answers with another status than the one expected (a bench that measures errors fast is wrong). */
  unexpected: number;
  /** Connection errors and timeouts. */
  errors: number;
}

export interface LoadOptions {
  /** The status every answer must have. */
  expect: number;
  connections: number;
  durationS: number;
  /** Two seconds of the same load first (JIT, connection pools), not measured. */
  warmUp: boolean;
  headers?: Record<string, string>;
}

function unexpectedAnswers(result: autocannon.Result, expect: number): number {
  const answered = result['1xx'] + result['2xx'] + result['3xx'] + result['4xx'] + result['5xx'];
  const expected = result.statusCodeStats?.[`${expect}`]?.count ?? 0;
  return answered - expected;
}

/** Drives `url` with autocannon, each request on the path `path()` gives; every answer is checked. */
export async function load(url: string, path: () => string, options: LoadOptions): Promise<LoadFigures> {
  const run = (duration: number) =>
    autocannon({
      url,
      connections: options.connections,
      duration,
      ...(options.headers ? { headers: options.headers } : {}),
      requests: [{ setupRequest: (r) => ({ ...r, path: path() }) }],
    });
  if (options.warmUp) await run(2);
  const result = await run(options.durationS);
  return {
    reqPerSec: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    unexpected: unexpectedAnswers(result, options.expect),
    errors: result.errors + result.timeouts,
  };
}

/** The round of median throughput, with the unexpected answers and errors of all rounds. */
export function medianRound(rounds: LoadFigures[]): LoadFigures {
  const sorted = [...rounds].sort((a, b) => a.reqPerSec - b.reqPerSec);
  const middle = sorted[Math.floor(sorted.length / 2)]!;
  return {
    ...middle,
    unexpected: rounds.reduce((n, r) => n + r.unexpected, 0),
    errors: rounds.reduce((n, r) => n + r.errors, 0),
  };
}
