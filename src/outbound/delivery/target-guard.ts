/**
 * Keeps outbound webhooks away from internal networks (SSRF).
 *
 * Webhook URLs come from script authors, so their targets are untrusted. The guard works at
 * connect time, inside the HTTP client: the connector resolves the host itself, checks every
 * address it got, and connects to a checked address. There is no second resolution between the
 * check and the connect, so DNS rebinding (a public answer at validation, a private one at
 * connect) cannot slip through. An operator may allow ranges (OUTBOUND_ALLOW_CIDRS).
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP, isIPv6 } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import ipaddr from 'ipaddr.js';
import { Agent, buildConnector } from 'undici';

type IPv4 = ipaddr.IPv4;
type IPv6 = ipaddr.IPv6;
type Address = IPv4 | IPv6;

export type AddressRefusalReason =
  | 'invalid'
  | 'unspecified'
  | 'loopback'
  | 'private'
  | 'link-local'
  | 'carrier-grade-nat'
  | 'multicast'
  | 'broadcast'
  | 'reserved'
  | 'documentation'
  | 'unique-local'
  | 'site-local';

const V4_RANGES: ReadonlyArray<readonly [string, AddressRefusalReason]> = [
  ['0.0.0.0/8', 'unspecified'],
  ['10.0.0.0/8', 'private'],
  ['100.64.0.0/10', 'carrier-grade-nat'],
  ['127.0.0.0/8', 'loopback'],
  ['169.254.0.0/16', 'link-local'], // 169.254.169.254: cloud metadata
  ['172.16.0.0/12', 'private'],
  ['192.0.0.0/24', 'reserved'], // IETF protocol assignments
  ['192.0.2.0/24', 'documentation'],
  ['192.88.99.0/24', 'reserved'], // 6to4 relay anycast (deprecated)
  ['192.168.0.0/16', 'private'],
  ['198.18.0.0/15', 'reserved'], // benchmarking
  ['198.51.100.0/24', 'documentation'],
  ['203.0.113.0/24', 'documentation'],
  ['224.0.0.0/4', 'multicast'],
  ['255.255.255.255/32', 'broadcast'],
  ['240.0.0.0/4', 'reserved'],
];

const V6_RANGES: ReadonlyArray<readonly [string, AddressRefusalReason]> = [
  ['fe80::/10', 'link-local'],
  ['fec0::/10', 'site-local'],
  ['fc00::/7', 'unique-local'],
  ['ff00::/8', 'multicast'],
  ['2001:db8::/32', 'documentation'],
  ['3fff::/20', 'documentation'],
  ['64:ff9b:1::/48', 'reserved'], // local-use NAT64 (RFC 8215)
  ['2001::/23', 'reserved'], // IETF protocol assignments: Teredo, benchmarking, ORCHID …
];

const parsedV4 = V4_RANGES.map(([cidr, reason]) => [ipaddr.IPv4.parseCIDR(cidr), reason] as const);
const parsedV6 = V6_RANGES.map(([cidr, reason]) => [ipaddr.IPv6.parseCIDR(cidr), reason] as const);
const GLOBAL_UNICAST_V6 = ipaddr.IPv6.parseCIDR('2000::/3');
const NAT64_V6 = ipaddr.IPv6.parseCIDR('64:ff9b::/96');
const TRANSLATED_V6 = ipaddr.IPv6.parseCIDR('::ffff:0:0:0/96'); // RFC 6145 IPv4-translated
const SIX_TO_FOUR_V6 = ipaddr.IPv6.parseCIDR('2002::/16');

/**
 * Canonical text of an IPv6 address written with a dotted quad (`::ffff:127.0.0.1`,
 * `64:ff9b::10.0.0.1`, `::127.0.0.1`), by the WHATWG URL parser: ipaddr.js reads every dotted
 * tail as IPv4-mapped, which `::127.0.0.1` (IPv4-compatible, ::7f00:1) is not.
 */
function canonicalIPv6(text: string): string {
  if (!text.includes('.') || !isIPv6(text)) return text;
  try {
    return new URL(`http://[${text}]/`).hostname.slice(1, -1);
  } catch {
    return text;
  }
}

/** Parses an IP address (brackets and an IPv6 zone allowed); null when it is not one. */
function parseAddress(ip: string): Address | null {
  let text = ip.trim();
  if (text.startsWith('[') && text.endsWith(']')) text = text.slice(1, -1);
  const zone = text.indexOf('%');
  if (zone >= 0 && text.includes(':')) text = text.slice(0, zone); // the zone does not change the range
  try {
    return ipaddr.parse(canonicalIPv6(text));
  } catch {
    return null;
  }
}

function embeddedV4(parts: readonly number[], high: number, low: number): IPv4 {
  const a = parts[high] ?? 0;
  const b = parts[low] ?? 0;
  return new ipaddr.IPv4([a >> 8, a & 0xff, b >> 8, b & 0xff]);
}

function classifyV4(address: IPv4): AddressRefusalReason | null {
  for (const [range, reason] of parsedV4) if (address.match(range)) return reason;
  return null;
}

function classifyV6(address: IPv6): AddressRefusalReason | null {
  const parts = address.parts;
  if (parts.every((part) => part === 0)) return 'unspecified';
  if (parts.slice(0, 7).every((part) => part === 0) && parts[7] === 1) return 'loopback';
  // Addresses that carry an IPv4 address: judge the IPv4 address they lead to.
  if (address.isIPv4MappedAddress()) return classifyV4(address.toIPv4Address());
  if (address.match(TRANSLATED_V6) || address.match(NAT64_V6)) return classifyV4(embeddedV4(parts, 6, 7));
  if (address.match(SIX_TO_FOUR_V6)) {
    const inner = classifyV4(embeddedV4(parts, 1, 2));
    if (inner) return inner;
  }
  for (const [range, reason] of parsedV6) if (address.match(range)) return reason;
  // Outside 2000::/3 nothing is global unicast (IPv4-compatible ::a.b.c.d, 100::/64 discard …).
  if (!address.match(GLOBAL_UNICAST_V6)) return 'reserved';
  return null;
}

function classifyParsed(address: Address): AddressRefusalReason | null {
  return address.kind() === 'ipv4' ? classifyV4(address as IPv4) : classifyV6(address as IPv6);
}

/**
 * Null when `ip` is a public unicast address; otherwise why it is refused as a webhook target.
 * IPv4-mapped (::ffff:a.b.c.d), IPv4-translated, NAT64 (64:ff9b::/96) and 6to4 addresses are
 * judged by the IPv4 address they embed. Non-canonical IPv4 forms (`2130706433`, `0x7f.1`,
 * `127.1`) are understood as the resolver would understand them.
 */
export function classifyAddress(ip: string): AddressRefusalReason | null {
  const address = parseAddress(ip);
  return address ? classifyParsed(address) : 'invalid';
}

/** A compiled OUTBOUND_ALLOW_CIDRS list. */
export type AllowList = ReadonlyArray<readonly [Address, number]>;

/**
 * Compiles CIDR ranges (`10.0.0.0/8`, `fd00::/8`; a bare address counts as /32 or /128).
 * Throws a TypeError naming the first invalid entry.
 */
function compileAllowList(cidrs: readonly string[]): AllowList {
  return cidrs.map((raw) => {
    const cidr = raw.trim();
    const slash = cidr.indexOf('/');
    const canonical = slash < 0 ? canonicalIPv6(cidr) : `${canonicalIPv6(cidr.slice(0, slash))}${cidr.slice(slash)}`;
    if (ipaddr.IPv4.isValidCIDRFourPartDecimal(canonical) || ipaddr.IPv6.isValidCIDR(canonical)) {
      return ipaddr.parseCIDR(canonical);
    }
    if (ipaddr.IPv4.isValidFourPartDecimal(canonical) || ipaddr.IPv6.isValid(canonical)) {
      const address = ipaddr.parse(canonical);
      return [address, address.kind() === 'ipv4' ? 32 : 128] as const;
    }
    throw new TypeError(`"${raw}" is not a CIDR range such as 10.0.0.0/8 or fd00::/8`);
  });
}

/** An address and, for IPv4 and IPv4-mapped IPv6, its other spelling: both reach the same host. */
function spellings(address: Address): Address[] {
  if (address.kind() === 'ipv4') return [address, (address as IPv4).toIPv4MappedAddress()];
  const v6 = address as IPv6;
  return v6.isIPv4MappedAddress() ? [v6, v6.toIPv4Address()] : [v6];
}

function inAllowList(address: Address, allow: AllowList): boolean {
  const candidates = spellings(address);
  return allow.some(([range, bits]) =>
    candidates.some((candidate) => candidate.kind() === range.kind() && candidate.match(range, bits)),
  );
}

export type AddressCheck = { allowed: true } | { allowed: false; reason: AddressRefusalReason };

/** Whether a webhook may connect to `ip`: public, or inside an allowed range. */
export function checkAddress(ip: string, allow: AllowList | readonly string[] = []): AddressCheck {
  const address = parseAddress(ip);
  if (!address) return { allowed: false, reason: 'invalid' };
  const reason = classifyParsed(address);
  if (reason === null) return { allowed: true };
  const compiled =
    allow.length > 0 && typeof allow[0] === 'string'
      ? compileAllowList(allow as readonly string[])
      : (allow as AllowList);
  return inAllowList(address, compiled) ? { allowed: true } : { allowed: false, reason };
}

/** `checkAddress(ip, allowCidrs).allowed`. */
export function isAllowed(ip: string, allowCidrs: AllowList | readonly string[] = []): boolean {
  return checkAddress(ip, allowCidrs).allowed;
}

/** A connection was refused because the target resolves to an address that is not allowed. */
export class TargetRefusedError extends Error {
  readonly code = 'ERR_OUTBOUND_TARGET_REFUSED';
  readonly host: string;
  readonly address: string;
  readonly reason: AddressRefusalReason;

  constructor(host: string, address: string, reason: AddressRefusalReason) {
    const target = host === address ? address : `${host} (${address})`;
    super(`refused webhook target ${target}: ${reason} address; allow it with OUTBOUND_ALLOW_CIDRS if it is meant`);
    this.name = 'TargetRefusedError';
    this.host = host;
    this.address = address;
    this.reason = reason;
  }
}

export interface ResolvedAddress {
  address: string;
  family: number;
}

/** Resolves a host name to all its addresses (default: `dns.lookup` with `all: true`). */
export type LookupAll = (hostname: string) => Promise<ResolvedAddress[]>;

const defaultLookup: LookupAll = (hostname) => dnsLookup(hostname, { all: true });

export interface GuardedConnectorOptions {
  /** OUTBOUND_ALLOW_CIDRS: ranges allowed although they are not public. */
  allowCidrs?: readonly string[];
  /** Deadline for the name lookup, and separately for each TCP (+TLS) connect. Default 10 s. */
  connectTimeoutMs?: number;
  /** Replaces dns.lookup (tests, custom resolvers). */
  lookup?: LookupAll;
  /** TLS options for https targets (a `ca` in tests, say). */
  tls?: ConnectionOptions;
  /** The connector that opens the socket to a checked address (default: undici's). */
  connector?: buildConnector.connector;
}

/** Errors after which the next resolved address is worth trying. */
const TRY_NEXT_ADDRESS = new Set([
  'ECONNREFUSED',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'EADDRNOTAVAIL',
  'ETIMEDOUT',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/**
 * An undici connector (`connect` option of a Client, Pool or Agent) that resolves the host,
 * refuses with TargetRefusedError when ANY of its addresses is not allowed (a name that points
 * inside is a misconfiguration or an attack, not something to route around), then connects to
 * the checked addresses in order, sending the original name as TLS `servername`.
 */
export function createGuardedConnector(options: GuardedConnectorOptions = {}): buildConnector.connector {
  const allow = compileAllowList(options.allowCidrs ?? []);
  const timeoutMs = options.connectTimeoutMs ?? 10_000;
  const lookup = options.lookup ?? defaultLookup;
  const base = options.connector ?? buildConnector({ ...options.tls, timeout: timeoutMs });

  return function guardedConnect(opts, callback) {
    let done = false;
    const finish: buildConnector.Callback = (...args) => {
      if (done) return;
      done = true;
      callback(...args);
    };
    let host = opts.hostname;
    if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);

    resolve(host, lookup, timeoutMs)
      .then((addresses) => {
        for (const address of addresses) {
          const check = checkAddress(address, allow);
          if (!check.allowed) throw new TargetRefusedError(host, address, check.reason);
        }
        const servername = opts.servername || (isIP(host) ? undefined : host);
        const attempt = (index: number): void => {
          const address = addresses[index] as string;
          base({ ...opts, hostname: address, ...(servername ? { servername } : {}) }, (error, socket) => {
            if (error) {
              const code = (error as NodeJS.ErrnoException).code ?? '';
              if (index + 1 < addresses.length && TRY_NEXT_ADDRESS.has(code)) attempt(index + 1);
              else finish(error, null);
              return;
            }
            finish(null, socket);
          });
        };
        attempt(0);
      })
      .catch((error: unknown) => finish(error instanceof Error ? error : new Error(String(error)), null));
  };
}

async function resolve(host: string, lookup: LookupAll, timeoutMs: number): Promise<string[]> {
  if (isIP(host)) return [host];
  if (host === '') throw new TargetRefusedError('(empty host)', '', 'invalid');
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = new Error(`lookup of ${host} timed out after ${timeoutMs} ms`) as NodeJS.ErrnoException;
      error.code = 'ELOOKUPTIMEOUT';
      reject(error);
    }, timeoutMs);
    timer.unref();
  });
  try {
    const results = await Promise.race([lookup(host), timeout]);
    const addresses = [...new Set(results.map((result) => result.address))];
    if (addresses.length === 0) {
      const error = new Error(`${host} has no addresses`) as NodeJS.ErrnoException;
      error.code = 'ENOTFOUND';
      throw error;
    }
    return addresses;
  } finally {
    clearTimeout(timer);
  }
}

export interface GuardedAgentOptions extends GuardedConnectorOptions {
  /** Other undici Agent options (keep-alive, connections per origin …). */
  agentOptions?: Omit<Agent.Options, 'connect' | 'factory' | 'socketPath'>;
}

/** An undici Agent whose every connection goes through `createGuardedConnector`. */
export function createGuardedAgent(options: GuardedAgentOptions = {}): Agent {
  const { agentOptions, ...connectorOptions } = options;
  return new Agent({ ...agentOptions, connect: createGuardedConnector(connectorOptions) });
}
