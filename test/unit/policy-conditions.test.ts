import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseConditions } from "../../src/governance/policies/condition-parser.js";
import {
  type Condition,
  compileCondition,
  compileConditions,
  jsonEqual,
  localClock,
  parseCidr,
  WEEKDAYS,
} from "../../src/governance/policies/conditions.js";
import type { PolicyContext } from "../../src/governance/policies/policy-context.js";
import { policyContext } from "../helpers/policies.js";

const holds = (condition: Condition, overrides: Partial<PolicyContext> = {}) =>
  compileCondition(condition)(policyContext(overrides));

const fieldsOf = (raw: unknown) => parseConditions(raw).errors.map((error) => error.field);

describe("value conditions", () => {
  it("match environments, roles and teams exactly, case included", () => {
    expect(holds({ type: "environments", values: ["staging", "production"] })).toBe(true);
    expect(holds({ type: "environments", values: ["Production"] })).toBe(false);
    expect(holds({ type: "roles", values: ["developer", "admin"] })).toBe(true);
    expect(holds({ type: "roles", values: ["Admin"] })).toBe(false);
    expect(holds({ type: "teams", values: ["payments"] })).toBe(true);
    expect(holds({ type: "teams", values: ["payments"] }, { team: null })).toBe(false);
  });

  it("match an external system only when the call names one", () => {
    expect(holds({ type: "external_systems", values: ["zendesk"] })).toBe(true);
    expect(holds({ type: "external_systems", values: ["zendesk"] }, { externalSystem: undefined })).toBe(
      false,
    );
  });

  it("match an external user by id, or by e-mail in any case", () => {
    const users: Condition = { type: "external_users", values: ["u-42"] };
    expect(holds(users, { externalUserEmail: undefined })).toBe(true);
    expect(holds({ type: "external_users", values: ["U-42"] }, { externalUserEmail: undefined })).toBe(false);
    expect(
      holds({ type: "external_users", values: ["ada@example.COM"] }, { externalUserId: undefined }),
    ).toBe(true);
    expect(holds(users, { externalUserId: undefined, externalUserEmail: undefined })).toBe(false);
  });
});

describe("ip_ranges", () => {
  it.each([
    ["10.0.0.0/8", true],
    ["10.0.0.1/8", true],
    ["0.0.0.0/0", true],
    ["192.168.1.1/32", true],
    ["2001:db8::/32", true],
    ["::/0", true],
    ["10.0.0.0/33", false],
    ["2001:db8::/129", false],
    ["10.0.0.0", false],
    ["10.0.0/8", false],
    ["fe80::1%eth0/64", false],
    ["10.0.0.0/-1", false],
    ["10.0.0.0/08a", false],
    ["example.com/8", false],
  ])("parseCidr(%j) is valid: %s", (text, valid) => {
    expect(parseCidr(text) !== undefined).toBe(valid);
  });

  it("matches IPv4 and IPv6 callers, IPv4-mapped and bracketed forms included", () => {
    const ranges: Condition = { type: "ip_ranges", values: ["10.0.0.0/8", "2001:db8::/32"] };
    expect(holds(ranges, { ip: "10.255.0.1" })).toBe(true);
    expect(holds(ranges, { ip: "11.0.0.1" })).toBe(false);
    expect(holds(ranges, { ip: "::ffff:10.1.2.3" })).toBe(true);
    expect(holds(ranges, { ip: "[2001:db8::1]" })).toBe(true);
    expect(holds(ranges, { ip: "2001:db9::1" })).toBe(false);
    expect(holds(ranges, { ip: undefined })).toBe(false);
    expect(holds(ranges, { ip: "not-an-ip" })).toBe(false);
  });

  const ipv4 = fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 4, maxLength: 4 });
  const toNumber = (bytes: number[]) => bytes.reduce((value, byte) => value * 256 + byte, 0);

  it("agrees with a naive bitwise IPv4 membership test", () => {
    fc.assert(
      fc.property(ipv4, ipv4, fc.integer({ min: 0, max: 32 }), (network, caller, prefix) => {
        const naive =
          prefix === 0 ||
          Math.floor(toNumber(network) / 2 ** (32 - prefix)) ===
            Math.floor(toNumber(caller) / 2 ** (32 - prefix));
        const condition: Condition = { type: "ip_ranges", values: [`${network.join(".")}/${prefix}`] };
        expect(holds(condition, { ip: caller.join(".") })).toBe(naive);
      }),
    );
  });

  const ipv6 = fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 });
  const toBig = (groups: number[]) => groups.reduce((value, group) => (value << 16n) | BigInt(group), 0n);

  it("agrees with a naive bitwise IPv6 membership test", () => {
    fc.assert(
      fc.property(
        ipv6,
        ipv6,
        fc.integer({ min: 0, max: 128 }),
        fc.boolean(),
        (network, caller, prefix, near) => {
          // Half the callers share the network's leading groups, so both outcomes are exercised.
          const address = near
            ? [...network.slice(0, Math.floor(prefix / 16)), ...caller].slice(0, 8)
            : caller;
          const shift = BigInt(128 - prefix);
          const naive = toBig(network) >> shift === toBig(address) >> shift;
          const hex = (groups: number[]) => groups.map((group) => group.toString(16)).join(":");
          const condition: Condition = { type: "ip_ranges", values: [`${hex(network)}/${prefix}`] };
          expect(holds(condition, { ip: hex(address) })).toBe(naive);
        },
      ),
    );
  });
});

describe("time_range", () => {
  const at = (iso: string) => ({ now: new Date(iso) });

  it("holds from start (inclusive) to end (exclusive), in UTC by default", () => {
    const office: Condition = { type: "time_range", start: "09:00", end: "17:00" };
    expect(holds(office, at("2024-06-04T09:00:00Z"))).toBe(true);
    expect(holds(office, at("2024-06-04T16:59:59Z"))).toBe(true);
    expect(holds(office, at("2024-06-04T17:00:00Z"))).toBe(false);
    expect(holds(office, at("2024-06-04T08:59:00Z"))).toBe(false);
  });

  it("reads the wall clock of the time zone, daylight saving time included", () => {
    const paris: Condition = { type: "time_range", start: "09:00", end: "17:00", timezone: "Europe/Paris" };
    expect(holds(paris, at("2024-06-04T07:30:00Z"))).toBe(true); // 09:30 CEST
    expect(holds(paris, at("2024-01-09T07:30:00Z"))).toBe(false); // 08:30 CET
    expect(localClock(new Date("2024-03-31T22:30:00Z"), "Europe/Paris")).toEqual({ weekday: 1, minutes: 30 });
  });

  it("restricts to days, a range across midnight belonging to the day it starts", () => {
    const weekdays: Condition = {
      type: "time_range",
      start: "09:00",
      end: "17:00",
      days: ["mon", "tue", "wed", "thu", "fri"],
    };
    expect(holds(weekdays, at("2024-06-04T10:00:00Z"))).toBe(true); // Tuesday
    expect(holds(weekdays, at("2024-06-08T10:00:00Z"))).toBe(false); // Saturday
    const fridayNight: Condition = { type: "time_range", start: "22:00", end: "06:00", days: ["fri"] };
    expect(holds(fridayNight, at("2024-06-07T23:00:00Z"))).toBe(true); // Friday 23:00
    expect(holds(fridayNight, at("2024-06-08T03:00:00Z"))).toBe(true); // Saturday 03:00
    expect(holds(fridayNight, at("2024-06-08T23:00:00Z"))).toBe(false); // Saturday 23:00
    expect(holds(fridayNight, at("2024-06-07T03:00:00Z"))).toBe(false); // Friday 03:00
  });

  const clock = fc.integer({ min: 0, max: 1439 });
  const hhmm = (minutes: number) =>
    `${String(Math.floor(minutes / 60)).padStart(2, "0")}:${String(minutes % 60).padStart(2, "0")}`;
  const instant = fc.date({
    min: new Date("2000-01-01T00:00:00Z"),
    max: new Date("2100-01-01T00:00:00Z"),
    noInvalidDate: true,
  });

  it("agrees with a naive minute-of-day check in UTC, across midnight or not", () => {
    fc.assert(
      fc.property(clock, clock, instant, (start, end, now) => {
        fc.pre(start !== end);
        const minutes = now.getUTCHours() * 60 + now.getUTCMinutes();
        const naive = start < end ? minutes >= start && minutes < end : minutes >= start || minutes < end;
        expect(holds({ type: "time_range", start: hhmm(start), end: hhmm(end) }, { now })).toBe(naive);
      }),
    );
  });

  it("with every day listed, holds exactly as without days", () => {
    fc.assert(
      fc.property(
        clock,
        clock,
        instant,
        fc.constantFrom("UTC", "America/New_York", "Asia/Kolkata"),
        (start, end, now, timezone) => {
          fc.pre(start !== end);
          const range = { type: "time_range" as const, start: hhmm(start), end: hhmm(end), timezone };
          expect(holds({ ...range, days: [...WEEKDAYS] }, { now })).toBe(holds(range, { now }));
        },
      ),
    );
  });
});

describe("custom", () => {
  it("compares the value at a dotted path, deeply for objects and arrays", () => {
    const attributes = {
      context: { department: "finance", labels: ["a", "b"], owner: { id: 7, team: "x" } },
      metadata: { priority: 2, flag: null },
    };
    const check = (attribute: string, equals: unknown) =>
      holds({ type: "custom", attribute, equals }, { attributes });
    expect(check("context.department", "finance")).toBe(true);
    expect(check("context.department", "Finance")).toBe(false);
    expect(check("context.labels", ["a", "b"])).toBe(true);
    expect(check("context.labels", ["b", "a"])).toBe(false);
    expect(check("context.owner", { team: "x", id: 7 })).toBe(true);
    expect(check("context.owner", { id: 7 })).toBe(false);
    expect(check("metadata.priority", 2)).toBe(true);
    expect(check("metadata.priority", "2")).toBe(false);
    expect(check("metadata.flag", null)).toBe(true);
    expect(check("metadata.missing", null)).toBe(false);
    expect(check("context.department.length", 7)).toBe(false);
    expect(check("context.constructor", {})).toBe(false);
  });

  it("jsonEqual ignores key order and prototypes", () => {
    const bare = Object.assign(Object.create(null), { a: 1, b: [1, { c: 2 }] });
    expect(jsonEqual(bare, { b: [1, { c: 2 }], a: 1 })).toBe(true);
    expect(jsonEqual([1], { 0: 1 })).toBe(false);
    expect(jsonEqual(null, {})).toBe(false);
  });
});

describe("compileConditions", () => {
  it("needs every condition to hold, and matches everything without any", () => {
    expect(compileConditions([])(policyContext())).toBe(true);
    const both: Condition[] = [
      { type: "roles", values: ["admin"] },
      { type: "environments", values: ["production"] },
    ];
    expect(compileConditions(both)(policyContext())).toBe(true);
    expect(compileConditions(both)(policyContext({ environment: "staging" }))).toBe(false);
  });
});

describe("parseConditions", () => {
  it("accepts every condition type and keeps it as given", () => {
    const raw = [
      { type: "environments", values: ["production"] },
      { type: "ip_ranges", values: ["10.0.0.0/8", "2001:db8::/32"] },
      { type: "roles", values: ["admin"] },
      { type: "teams", values: ["payments"] },
      { type: "external_systems", values: ["zendesk"] },
      { type: "external_users", values: ["u-1", "ada@example.com"] },
      { type: "time_range", start: "22:00", end: "06:00", days: ["fri", "sat"], timezone: "Europe/Paris" },
      { type: "custom", attribute: "context.department", equals: { any: ["json"] } },
    ];
    expect(parseConditions(raw)).toEqual({ conditions: raw, errors: [] });
  });

  it("names the exact field of each mistake", () => {
    expect(fieldsOf([{ type: "ip_ranges", values: ["10.0.0.0/8", "10.0.0.0/33"] }])).toEqual([
      "conditions[0].values[1]",
    ]);
    expect(fieldsOf([{ type: "roles", values: [] }])).toEqual(["conditions[0].values"]);
    expect(fieldsOf([{ type: "roles" }])).toEqual(["conditions[0].values"]);
    expect(fieldsOf([{ type: "roles", values: ["admin", 3, ""] }])).toEqual([
      "conditions[0].values[1]",
      "conditions[0].values[2]",
    ]);
    expect(fieldsOf([{ type: "time_range", start: "9:00", end: "24:00" }])).toEqual([
      "conditions[0].start",
      "conditions[0].end",
    ]);
    expect(fieldsOf([{ type: "time_range", start: "09:00", end: "09:00" }])).toEqual(["conditions[0].end"]);
    expect(
      fieldsOf([{ type: "time_range", start: "09:00", end: "17:00", timezone: "Mars/Olympus" }]),
    ).toEqual(["conditions[0].timezone"]);
    expect(fieldsOf([{ type: "time_range", start: "09:00", end: "17:00", days: ["monday"] }])).toEqual([
      "conditions[0].days",
    ]);
    expect(fieldsOf([{ type: "time_range", start: "09:00", end: "17:00", days: ["mon", "mon"] }])).toEqual([
      "conditions[0].days",
    ]);
    expect(fieldsOf([{ type: "custom", attribute: "context..x" }])).toEqual([
      "conditions[0].attribute",
      "conditions[0].equals",
    ]);
    expect(fieldsOf([{ type: "weekday" }, "roles", { type: "teams", values: ["a"], value: "b" }])).toEqual([
      "conditions[0].type",
      "conditions[1]",
      "conditions[2].value",
    ]);
    expect(fieldsOf({ type: "roles" })).toEqual(["conditions"]);
  });

  it("explains a bad CIDR and a bad time zone in words", () => {
    const [cidr] = parseConditions([{ type: "ip_ranges", values: ["10.0.0.0/33"] }]).errors;
    expect(cidr?.message).toContain('"10.0.0.0/33" is not a CIDR range');
    const [zone] = parseConditions([
      { type: "time_range", start: "09:00", end: "10:00", timezone: "Nowhere" },
    ]).errors;
    expect(zone?.message).toContain("IANA time zone");
  });

  it("never throws, and what it accepts compiles and evaluates", () => {
    fc.assert(
      fc.property(fc.anything(), (raw) => {
        const { conditions, errors } = parseConditions(raw);
        if (errors.length === 0)
          expect(typeof compileConditions(conditions)(policyContext())).toBe("boolean");
      }),
    );
    // Every key optional, so some generated conditions are valid and get evaluated.
    const shaped = fc.record(
      {
        type: fc.constantFrom("roles", "ip_ranges", "time_range", "custom", "teams"),
        values: fc.array(
          fc.oneof(
            fc.string(),
            fc.ipV4().map((ip) => `${ip}/24`),
          ),
          { maxLength: 3 },
        ),
        start: fc.string({ maxLength: 5 }),
        end: fc.constantFrom("06:00", "25:00"),
        attribute: fc.string({ maxLength: 10 }),
        equals: fc.jsonValue(),
      },
      { requiredKeys: ["type"] },
    );
    fc.assert(
      fc.property(fc.array(shaped, { maxLength: 3 }), (raw) => {
        const { conditions, errors } = parseConditions(raw);
        if (errors.length === 0)
          expect(typeof compileConditions(conditions)(policyContext())).toBe("boolean");
      }),
    );
  });
});
