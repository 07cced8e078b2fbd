import dns, { type LookupAddress } from "node:dns";
import { BlockList, isIP, type LookupFunction } from "node:net";
import { Agent, buildConnector } from "undici";
import { httpUrlProblem } from "../agents/http-url.js";
import { ConfigError, type PrivateNetworkAccess } from "../config.js";

/**
 * The SSRF guard for every outbound call (agents, OAuth2 token endpoints, platform
 * delivery URLs). A URL is judged twice: when it is registered, so an obvious mistake
 * is refused with a message, and at every connect, because DNS answers change after
 * registration (rebinding). At connect time the socket goes to exactly the addresses
 * that were checked: the guard is the resolver, so there is no second lookup to race.
 */

type AddressType = "ipv4" | "ipv6";
type Cidr = readonly [network: string, prefix: number];

/** Never a sensible destination for an HTTP call, whatever the operator allows. */
const UNROUTABLE: readonly Cidr[] = [
  ["0.0.0.0", 8], // "this network": Linux sends a connect to 0.0.0.0 to the local host
  ["224.0.0.0", 4], // multicast
  ["240.0.0.0", 4], // reserved, including the 255.255.255.255 broadcast
  ["::", 128],
  ["ff00::", 8], // multicast
];

/** Not publicly routable: refused unless STEWARD_ALLOW_PRIVATE_NETWORKS lets them through. */
const NON_PUBLIC: readonly Cidr[] = [
  ["10.0.0.0", 8],
  ["100.64.0.0", 10], // carrier-grade NAT
  ["127.0.0.0", 8],
  ["169.254.0.0", 16], // link-local, home of cloud metadata services
  ["172.16.0.0", 12],
  ["192.0.0.0", 24], // IETF protocol assignments
  ["192.0.2.0", 24], // documentation
  ["192.88.99.0", 24], // 6to4 relay anycast
  ["192.168.0.0", 16],
  ["198.18.0.0", 15], // benchmarking
  ["198.51.100.0", 24], // documentation
  ["203.0.113.0", 24], // documentation
  ["::", 96], // loopback ::1 and the deprecated IPv4-compatible form
  ["64:ff9b:1::", 48], // local-use NAT64
  ["100::", 64], // discard-only
  ["2001:2::", 48], // benchmarking
  ["2001:db8::", 32], // documentation
  ["3fff::", 20], // documentation
  ["fc00::", 7], // unique local
  ["fe80::", 10], // link-local
  ["fec0::", 10], // deprecated site-local
];

const LOOPBACK: readonly LookupAddress[] = [
  { address: "127.0.0.1", family: 4 },
  { address: "::1", family: 6 },
];

/** c-ares otherwise waits up to ~20 s for a dead server; registration should not. */
const RESOLVER_OPTIONS = { timeout: 2_000, tries: 2 };

/** Thrown (to net.connect, so to undici) when a destination is refused. */
export class BlockedDestinationError extends Error {
  readonly code = "ESTEWARDBLOCKED";
  constructor() {
    super("destination refused by the SSRF guard");
    this.name = "BlockedDestinationError";
  }
}

/** A name that has no address (of the wanted family) right now. */
class UnresolvedHostError extends Error {
  readonly code = "ENOTFOUND";
  constructor() {
    super("the host has no address");
    this.name = "UnresolvedHostError";
  }
}

/** Whether `error`, or anything in its `cause` chain, is the guard refusing a destination. */
export function isBlockedDestination(error: unknown): boolean {
  for (let current = error; current instanceof Error; current = current.cause) {
    if (current instanceof BlockedDestinationError) return true;
  }
  return false;
}

function blockList(cidrs: readonly Cidr[]): BlockList {
  const list = new BlockList();
  for (const [network, prefix] of cidrs) list.addSubnet(network, prefix, typeOf(network));
  return list;
}

function typeOf(address: string): AddressType {
  return isIP(address) === 4 ? "ipv4" : "ipv6";
}

/** `[::1]` → `::1`, `fe80::1%eth0` → `fe80::1`: the forms URLs and resolvers hand out. */
function bareAddress(host: string): string {
  const unbracketed = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  const zone = unbracketed.indexOf("%");
  return zone === -1 ? unbracketed : unbracketed.slice(0, zone);
}

/** RFC 6761: these names mean the local host and are never asked of DNS. */
function isLocalhostName(host: string): boolean {
  const name = host.toLowerCase().replace(/\.$/, "");
  return name === "localhost" || name.endsWith(".localhost");
}

/** The eight 16-bit groups of a valid IPv6 address (a trailing dotted quad included). */
function ipv6Groups(address: string): number[] {
  let text = address;
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a = 0, b = 0, c = 0, d = 0] = dotted.slice(1).map(Number);
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const parse = (part: string) =>
    part === "" ? [] : part.split(":").map((group) => Number.parseInt(group, 16));
  const [head = "", tail] = text.split("::");
  const front = parse(head);
  if (tail === undefined) return front;
  const back = parse(tail);
  return [...front, ...new Array<number>(8 - front.length - back.length).fill(0), ...back];
}

/**
 * IPv4 addresses an IPv6 address carries and that a packet to it would end up at:
 * mapped and translated forms, NAT64, 6to4 and Teredo (server and de-obfuscated client).
 */
function embeddedIPv4(address: string): string[] {
  const [g0 = 0, g1 = 0, g2 = 0, g3 = 0, g4 = 0, g5 = 0, g6 = 0, g7 = 0] = ipv6Groups(address);
  const v4 = (high: number, low: number) => `${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}`;
  const zeroUpTo = (count: number) => [g0, g1, g2, g3, g4, g5].slice(0, count).every((group) => group === 0);
  if (zeroUpTo(5) && g5 === 0xffff) return [v4(g6, g7)]; // ::ffff:a.b.c.d
  if (zeroUpTo(4) && g4 === 0xffff && g5 === 0) return [v4(g6, g7)]; // ::ffff:0:a.b.c.d
  if (g0 === 0x64 && g1 === 0xff9b && g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0) return [v4(g6, g7)];
  if (g0 === 0x2002) return [v4(g1, g2)];
  if (g0 === 0x2001 && g1 === 0) return [v4(g2, g3), v4(~g6 & 0xffff, ~g7 & 0xffff)];
  return [];
}

function allowListOf(cidrs: readonly string[]): BlockList {
  const list = new BlockList();
  for (const cidr of cidrs) {
    const [network = "", prefix = ""] = cidr.split("/");
    try {
      if (isIP(network) === 0 || !/^\d{1,3}$/.test(prefix)) throw new RangeError(cidr);
      list.addSubnet(network, Number(prefix), typeOf(network));
    } catch {
      throw new ConfigError("STEWARD_ALLOW_PRIVATE_NETWORKS", `contains an invalid CIDR (got "${cidr}")`);
    }
  }
  return list;
}

const UNROUTABLE_LIST = blockList(UNROUTABLE);
const NON_PUBLIC_LIST = blockList(NON_PUBLIC);

export interface AddressGuardOptions {
  /** Resolve with these servers ("host" or "host:port") instead of the system resolver. */
  dnsServers?: string[];
}

/** Decides which network destinations outbound calls may reach; see the module comment. */
export class AddressGuard {
  readonly #allowsNonPublic: (address: string) => boolean;
  readonly #resolve: (hostname: string) => Promise<LookupAddress[]>;

  constructor(access: PrivateNetworkAccess, options: AddressGuardOptions = {}) {
    if (access.kind === "cidrs") {
      const allowed = allowListOf(access.cidrs);
      this.#allowsNonPublic = (address) => allowed.check(address, typeOf(address));
    } else {
      const all = access.kind === "all";
      this.#allowsNonPublic = () => all;
    }
    this.#resolve = resolverFor(options.dnsServers ?? []);
  }

  /** Whether a connection to this IP address is allowed; anything that is not an address is not. */
  isAllowedAddress(ip: string): boolean {
    const address = bareAddress(ip);
    if (isIP(address) === 0) return false;
    const type = typeOf(address);
    if (UNROUTABLE_LIST.check(address, type)) return false;
    if (type === "ipv6") {
      const embedded = embeddedIPv4(address);
      if (embedded.length > 0) return embedded.every((inner) => this.isAllowedAddress(inner));
    }
    return !NON_PUBLIC_LIST.check(address, type) || this.#allowsNonPublic(address);
  }

  /**
   * Whether a connection to `host` may start as far as its literal form goes: net.connect
   * skips `lookup` for IP literals, so those are judged here; names are judged in `lookup`.
   */
  isAllowedHost(host: string): boolean {
    const address = bareAddress(host);
    return isIP(address) === 0 || this.isAllowedAddress(address);
  }

  /**
   * Why `url` is refused as an outbound destination at registration, or null. A name
   * that does not resolve right now is accepted: every connection checks it again.
   */
  async checkUrl(url: string): Promise<string | null> {
    const problem = httpUrlProblem(url);
    if (problem !== null) return problem;
    const host = bareAddress(new URL(url).hostname);
    if (isIP(host) !== 0) {
      return this.isAllowedAddress(host)
        ? null
        : "must not point to a private, loopback or other non-public address";
    }
    let addresses: LookupAddress[];
    try {
      addresses = await this.#addressesOf(host);
    } catch {
      return null;
    }
    return addresses.every(({ address }) => this.isAllowedAddress(address))
      ? null
      : "must not resolve to a private, loopback or other non-public address";
  }

  /**
   * A `net.LookupFunction` for undici's connect option: resolves, refuses the name when
   * ANY of its addresses is refused (so happy-eyeballs cannot fall through to a bad one),
   * and hands net.connect the checked addresses themselves.
   */
  readonly lookup: LookupFunction = (hostname, options, callback) => {
    this.#checkedAddresses(hostname, options.family).then(
      (addresses) => {
        if (options.all) callback(null, addresses);
        else callback(null, addresses[0].address, addresses[0].family);
      },
      (error: NodeJS.ErrnoException) => callback(error, ""),
    );
  };

  async #checkedAddresses(
    hostname: string,
    family: number | string | undefined,
  ): Promise<[LookupAddress, ...LookupAddress[]]> {
    const addresses = await this.#addressesOf(hostname);
    if (!addresses.every(({ address }) => this.isAllowedAddress(address)))
      throw new BlockedDestinationError();
    const wanted = family === 4 || family === "IPv4" ? 4 : family === 6 || family === "IPv6" ? 6 : 0;
    const [first, ...rest] = addresses.filter((address) => wanted === 0 || address.family === wanted);
    if (first === undefined) throw new UnresolvedHostError();
    return [first, ...rest];
  }

  #addressesOf(hostname: string): Promise<LookupAddress[]> {
    const address = bareAddress(hostname);
    const family = isIP(address);
    if (family !== 0) return Promise.resolve([{ address, family }]);
    if (isLocalhostName(hostname)) return Promise.resolve([...LOOPBACK]);
    return this.#resolve(hostname);
  }
}

function resolverFor(servers: readonly string[]): (hostname: string) => Promise<LookupAddress[]> {
  if (servers.length === 0) {
    return (hostname) => dns.promises.lookup(hostname, { all: true, verbatim: true });
  }
  const resolver = new dns.promises.Resolver(RESOLVER_OPTIONS);
  try {
    resolver.setServers([...servers]);
  } catch {
    throw new ConfigError(
      "STEWARD_DNS_SERVERS",
      `must list IP addresses with optional ports (got "${servers}")`,
    );
  }
  return async (hostname) => {
    const [v4, v6] = await Promise.allSettled([resolver.resolve4(hostname), resolver.resolve6(hostname)]);
    const addresses: LookupAddress[] = [
      ...(v4.status === "fulfilled" ? v4.value.map((address) => ({ address, family: 4 })) : []),
      ...(v6.status === "fulfilled" ? v6.value.map((address) => ({ address, family: 6 })) : []),
    ];
    if (addresses.length > 0) return addresses;
    throw v4.status === "rejected" ? v4.reason : new UnresolvedHostError();
  };
}

/**
 * The undici dispatcher every outbound call goes through: names are resolved by the
 * guard's `lookup`, IP literals are judged before connecting, and redirects are never
 * followed (undici's plain dispatch does not follow them).
 */
export function createGuardedAgent(guard: AddressGuard): Agent {
  const connect = buildConnector({ lookup: guard.lookup });
  return new Agent({
    connect: (options, callback) => {
      if (!guard.isAllowedHost(options.hostname)) {
        callback(new BlockedDestinationError(), null);
        return;
      }
      connect(options, callback);
    },
  });
}
