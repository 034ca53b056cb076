const DEFAULT_PORTS: Record<string, string> = { 'http:': '80', 'https:': '443' };

/**
 * The origin host a delivery is counted against for fairness: `hostname:port`, lower-case, with
 * the scheme's default port filled in, IPv6 literals in brackets (`[::1]:443`) and a trailing
 * root dot dropped (`example.com.` is `example.com`).
 */
export function hostKey(url: URL): string {
  let hostname = url.hostname.toLowerCase();
  if (hostname.endsWith('.')) hostname = hostname.slice(0, -1);
  if (hostname === '') throw new RangeError(`URL has no host: ${url.href}`);
  const port = url.port || DEFAULT_PORTS[url.protocol];
  if (port === undefined) throw new RangeError(`no default port for ${url.protocol} in ${url.href}`);
  return `${hostname}:${port}`;
}
