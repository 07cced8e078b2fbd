import type { LookupAddress, LookupOptions } from "node:dns";
import { isIP } from "node:net";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError } from "../../src/config.js";
import { AddressGuard, BlockedDestinationError } from "../../src/invocation/address-guard.js";
import { startDnsServer, type TestDnsServer } from "../helpers/dns-server.js";
import { SSRF_CORPUS } from "../helpers/ssrf-corpus.js";

const NONE = new AddressGuard({ kind: "none" });

/** More ways to say "not the public internet". */
const MORE_REFUSED = [
  "http://0x7f.1/",
  "http://0177.0.0.1/",
  "http://127.0.0.1./",
  "http://LOCALHOST./",
  "http://api.localhost/",
  "http://10.0.0.1/",
  "http://172.16.0.1/",
  "http://172.31.255.255/",
  "http://192.168.1.1/",
  "http://198.18.0.1/",
  "http://192.0.2.1/",
  "http://240.0.0.1/",
  "http://255.255.255.255/",
  "http://0.1.2.3/",
  "http://[::]/",
  "http://[fe80::1]/",
  "http://[ff02::1]/",
  "http://[fd12:3456::1]/",
  "http://[2001:db8::1]/",
  "http://[::127.0.0.1]/",
  "http://[::ffff:0:7f00:1]/",
  "http://[64:ff9b::10.0.0.1]/",
  "http://[2002:7f00:1::1]/", // 6to4 around 127.0.0.1
  "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/", // Teredo, client 127.0.0.1
  "ftp://example.com/",
  "javascript:alert(1)",
];

const PUBLIC = [
  "8.8.8.8",
  "1.1.1.1",
  "172.32.0.1",
  "100.128.0.1",
  "192.169.0.1",
  "198.20.0.1",
  "223.255.255.255",
  "2606:4700:4700::1111",
  "::ffff:8.8.8.8",
  "64:ff9b::808:808",
  "2002:808:808::1",
];

describe("URL parsing the guard relies on", () => {
  it.each([
    ["http://127.1/", "127.0.0.1"],
    ["http://2130706433/", "127.0.0.1"],
    ["http://017700000001/", "127.0.0.1"],
    ["http://0x7f.1/", "127.0.0.1"],
    ["http://0/", "0.0.0.0"],
    ["http://[::ffff:127.0.0.1]/", "[::ffff:7f00:1]"],
  ])("WHATWG URL normalises %s to %s", (url, hostname) => {
    expect(new URL(url).hostname).toBe(hostname);
  });
});

describe("AddressGuard with no private networks allowed", () => {
  it.each([...SSRF_CORPUS, ...MORE_REFUSED])("refuses %s at registration", async (url) => {
    expect(await NONE.checkUrl(url)).toEqual(expect.any(String));
  });

  it.each(SSRF_CORPUS.filter((url) => url.startsWith("http://")))(
    "refuses the host of %s at connect",
    async (url) => {
      const host = new URL(url).hostname.replace(/^\[|\]$/g, "");
      if (isIP(host) !== 0) expect(NONE.isAllowedHost(host)).toBe(false);
      else await expect(lookup(NONE, host)).rejects.toBeInstanceOf(BlockedDestinationError);
    },
  );

  it.each(PUBLIC)("allows the public address %s", (ip) => {
    expect(NONE.isAllowedAddress(ip)).toBe(true);
  });

  it("accepts a public IP literal at registration without resolving anything", async () => {
    expect(await NONE.checkUrl("https://8.8.8.8/invoke")).toBeNull();
    expect(await NONE.checkUrl("https://[2606:4700:4700::1111]:8443/")).toBeNull();
  });

  it("judges only literal hosts itself and leaves names to lookup", () => {
    expect(NONE.isAllowedHost("127.0.0.1")).toBe(false);
    expect(NONE.isAllowedHost("[::1]")).toBe(false);
    expect(NONE.isAllowedHost("::1")).toBe(false);
    expect(NONE.isAllowedHost("8.8.8.8")).toBe(true);
    expect(NONE.isAllowedHost("agent.example.com")).toBe(true);
  });

  it("treats scoped IPv6 addresses by their address and anything else as not allowed", () => {
    expect(NONE.isAllowedAddress("fe80::1%eth0")).toBe(false);
    expect(NONE.isAllowedAddress("not-an-ip")).toBe(false);
    expect(NONE.isAllowedAddress("")).toBe(false);
  });

  it("answers localhost names itself (RFC 6761) and refuses them", async () => {
    await expect(lookup(NONE, "localhost")).rejects.toMatchObject({ code: "ESTEWARDBLOCKED" });
    await expect(lookup(NONE, "db.localhost.")).rejects.toBeInstanceOf(BlockedDestinationError);
  });
});

describe("AddressGuard allow-lists", () => {
  const cidrs = new AddressGuard({ kind: "cidrs", cidrs: ["127.0.0.1/32", "10.0.0.0/8", "fd00::/8"] });
  const all = new AddressGuard({ kind: "all" });

  it.each(["127.0.0.1", "::ffff:127.0.0.1", "64:ff9b::7f00:1", "10.200.0.1", "fd12::1", "8.8.8.8"])(
    "a CIDR list lets %s through",
    (ip) => {
      expect(cidrs.isAllowedAddress(ip)).toBe(true);
    },
  );

  it.each(["127.0.0.2", "::1", "169.254.169.254", "192.168.0.1", "fc00::1", "0.0.0.0", "224.0.0.1"])(
    "a CIDR list still refuses %s",
    (ip) => {
      expect(cidrs.isAllowedAddress(ip)).toBe(false);
    },
  );

  it.each(["127.0.0.1", "::1", "169.254.169.254", "10.0.0.1", "fc00::1", "fe80::1", "100.64.0.1"])(
    '"all" lets %s through',
    (ip) => {
      expect(all.isAllowedAddress(ip)).toBe(true);
    },
  );

  it.each([
    "0.0.0.0",
    "0.1.2.3",
    "255.255.255.255",
    "224.0.0.1",
    "240.0.0.1",
    "::",
    "ff02::1",
    "::ffff:0.0.0.0",
  ])('"all" still refuses %s, which is never a unicast destination', (ip) => {
    expect(all.isAllowedAddress(ip)).toBe(false);
  });

  it("accepts an allowed private URL at registration", async () => {
    expect(await cidrs.checkUrl("http://127.0.0.1:8080/hook")).toBeNull();
    expect(await all.checkUrl("http://localhost:8080/hook")).toBeNull();
    expect(await cidrs.checkUrl("http://localhost:8080/hook")).toEqual(expect.any(String)); // ::1 is not listed
  });

  it.each(["10.0.0.0/33", "300.0.0.0/8", "fd00::/129", "10.0.0.0", "nonsense/8"])(
    "refuses to start with the bad CIDR %s, naming the variable",
    (cidr) => {
      const build = () => new AddressGuard({ kind: "cidrs", cidrs: [cidr] });
      expect(build).toThrow(ConfigError);
      expect(build).toThrow(/STEWARD_ALLOW_PRIVATE_NETWORKS/);
    },
  );
});

/** An independent statement of the IPv4 rules, as arithmetic on 32-bit numbers. */
const REFUSED_V4: readonly [string, number][] = [
  ["0.0.0.0", 8],
  ["10.0.0.0", 8],
  ["100.64.0.0", 10],
  ["127.0.0.0", 8],
  ["169.254.0.0", 16],
  ["172.16.0.0", 12],
  ["192.0.0.0", 24],
  ["192.0.2.0", 24],
  ["192.88.99.0", 24],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15],
  ["198.51.100.0", 24],
  ["203.0.113.0", 24],
  ["224.0.0.0", 4],
  ["240.0.0.0", 4],
];

const toNumber = (ip: string) => ip.split(".").reduce((sum, octet) => sum * 256 + Number(octet), 0);
const inRange = (ip: string, [network, prefix]: readonly [string, number]) =>
  Math.floor(toNumber(ip) / 2 ** (32 - prefix)) === Math.floor(toNumber(network) / 2 ** (32 - prefix));
const refusedByOracle = (ip: string) => REFUSED_V4.some((range) => inRange(ip, range));

const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((octets) => octets.join("."));
const hex = (ip: string) => {
  const [a = 0, b = 0, c = 0, d = 0] = ip.split(".").map(Number);
  return `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
};
const privateIpv4 = fc.constantFrom(...REFUSED_V4).chain(([network, prefix]) =>
  fc.nat(2 ** (32 - prefix) - 1).map((offset) => {
    const value = toNumber(network) + offset;
    return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join(".");
  }),
);

describe("AddressGuard properties", () => {
  it("agrees with the range arithmetic on every IPv4 address", () => {
    fc.assert(
      fc.property(ipv4, (ip) => {
        expect(NONE.isAllowedAddress(ip)).toBe(!refusedByOracle(ip));
      }),
      { numRuns: 5000 },
    );
  });

  it("refuses every address inside a refused range", () => {
    fc.assert(
      fc.property(privateIpv4, (ip) => {
        expect(NONE.isAllowedAddress(ip)).toBe(false);
      }),
    );
  });

  it("judges IPv4 the same through every IPv6 form that embeds it", () => {
    fc.assert(
      fc.property(ipv4, (ip) => {
        const verdict = NONE.isAllowedAddress(ip);
        expect(NONE.isAllowedAddress(`::ffff:${ip}`)).toBe(verdict);
        expect(NONE.isAllowedAddress(`::ffff:${hex(ip)}`)).toBe(verdict);
        expect(NONE.isAllowedAddress(`64:ff9b::${hex(ip)}`)).toBe(verdict);
        expect(NONE.isAllowedAddress(`2002:${hex(ip)}::1`)).toBe(verdict);
      }),
      { numRuns: 2000 },
    );
  });

  it("refuses random unique-local, link-local and multicast IPv6 addresses", () => {
    const group = fc.nat(0xffff).map((value) => value.toString(16));
    const suffix = fc.array(group, { minLength: 7, maxLength: 7 }).map((groups) => groups.join(":"));
    const prefixed = (low: number, high: number) =>
      fc
        .tuple(fc.integer({ min: low, max: high }), suffix)
        .map(([first, rest]) => `${first.toString(16)}:${rest}`);
    fc.assert(
      fc.property(
        fc.oneof(prefixed(0xfc00, 0xfdff), prefixed(0xfe80, 0xfebf), prefixed(0xff00, 0xffff)),
        (ip) => {
          expect(NONE.isAllowedAddress(ip)).toBe(false);
        },
      ),
    );
  });

  it('with "all", allows everything but the unroutable ranges', () => {
    const all = new AddressGuard({ kind: "all" });
    const unroutable = (ip: string) =>
      inRange(ip, ["0.0.0.0", 8]) || inRange(ip, ["224.0.0.0", 4]) || inRange(ip, ["240.0.0.0", 4]);
    fc.assert(
      fc.property(ipv4, (ip) => {
        expect(all.isAllowedAddress(ip)).toBe(!unroutable(ip));
      }),
    );
  });
});

describe("AddressGuard with its own DNS servers", () => {
  let dns: TestDnsServer;
  let guard: AddressGuard;

  beforeAll(async () => {
    dns = await startDnsServer({
      "loopback.steward.test": ["127.0.0.1"],
      "metadata.steward.test": ["169.254.169.254"],
      "public.steward.test": ["93.184.215.14", "93.184.215.15"],
      "mixed.steward.test": ["93.184.215.14", "10.0.0.7"],
    });
    guard = new AddressGuard({ kind: "none" }, { dnsServers: [dns.address] });
  });
  afterAll(() => dns.close());

  it("refuses at registration a name that resolves to a refused address", async () => {
    expect(await guard.checkUrl("http://loopback.steward.test/")).toMatch(/must not resolve/);
    expect(await guard.checkUrl("http://metadata.steward.test/")).toMatch(/must not resolve/);
    expect(await guard.checkUrl("http://mixed.steward.test/")).toMatch(/must not resolve/);
  });

  it("accepts at registration a public name, and one that does not resolve right now", async () => {
    expect(await guard.checkUrl("https://public.steward.test/invoke")).toBeNull();
    expect(await guard.checkUrl("https://not-yet.steward.test/invoke")).toBeNull();
  });

  it("refuses at connect a name when any of its addresses is refused", async () => {
    await expect(lookup(guard, "loopback.steward.test")).rejects.toBeInstanceOf(BlockedDestinationError);
    await expect(lookup(guard, "mixed.steward.test")).rejects.toMatchObject({ code: "ESTEWARDBLOCKED" });
  });

  it("hands net.connect exactly the addresses it checked, in both callback forms", async () => {
    expect(await lookup(guard, "public.steward.test")).toEqual([
      { address: "93.184.215.14", family: 4 },
      { address: "93.184.215.15", family: 4 },
    ]);
    expect(await lookup(guard, "public.steward.test", { family: 4 })).toEqual({
      address: "93.184.215.14",
      family: 4,
    });
  });

  it("fails a connect to a name that does not resolve", async () => {
    await expect(lookup(guard, "missing.steward.test")).rejects.toMatchObject({ code: "ENOTFOUND" });
    await expect(lookup(guard, "public.steward.test", { family: 6 })).rejects.toMatchObject({
      code: "ENOTFOUND",
    });
  });

  it("lets an allow-listed name through", async () => {
    const allowing = new AddressGuard(
      { kind: "cidrs", cidrs: ["127.0.0.1/32"] },
      { dnsServers: [dns.address] },
    );
    expect(await allowing.checkUrl("http://loopback.steward.test:8080/")).toBeNull();
    expect(await lookup(allowing, "loopback.steward.test")).toEqual([{ address: "127.0.0.1", family: 4 }]);
  });

  it("never asks DNS about localhost", async () => {
    await expect(lookup(guard, "localhost")).rejects.toBeInstanceOf(BlockedDestinationError);
    expect(dns.queries).not.toContain("localhost");
  });

  it("refuses to start with an unusable DNS server, naming the variable", () => {
    expect(() => new AddressGuard({ kind: "none" }, { dnsServers: ["not a server"] })).toThrow(
      /STEWARD_DNS_SERVERS/,
    );
  });
});

/** The guard's lookup as a promise: the address list with `all`, else the single answer. */
function lookup(
  guard: AddressGuard,
  hostname: string,
  options: LookupOptions = { all: true },
): Promise<LookupAddress[] | LookupAddress> {
  return new Promise((resolve, reject) => {
    guard.lookup(hostname, options, (error, address, family) => {
      if (error) reject(error);
      else resolve(typeof address === "string" ? { address, family: family ?? 0 } : address);
    });
  });
}
