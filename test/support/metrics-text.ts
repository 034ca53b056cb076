/** Reading the Prometheus text format in tests. */

/** The value of the sample `name{labels}` (labels matched as given, others ignored); 0 when absent. */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  let found = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const given = new Map<string, string>();
    for (const pair of (match[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      given.set(pair[1]!, pair[2]!);
    if (Object.entries(labels).every(([key, value]) => given.get(key) === value)) {
      total += Number(match[4]);
      found = true;
    }
  }
  return found ? total : 0;
}
