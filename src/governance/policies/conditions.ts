import { BlockList, isIP } from "node:net";
import type { PolicyContext } from "./policy-context.js";

/**
 * The condition types a JSON policy is written with, and their evaluation. Everything
 * here is pure: a condition is compiled once into a predicate over a PolicyContext.
 * Validation of untrusted input lives in condition-parser.ts.
 */

export const VALUE_CONDITION_TYPES = [
  "environments",
  "ip_ranges",
  "roles",
  "teams",
  "external_systems",
  "external_users",
] as const;
export type ValueConditionType = (typeof VALUE_CONDITION_TYPES)[number];

export const CONDITION_TYPES = [...VALUE_CONDITION_TYPES, "time_range", "custom"] as const;
export type ConditionType = (typeof CONDITION_TYPES)[number];

/** Day names of time_range, indexed like Date.getDay() (0 = Sunday). */
export const WEEKDAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"] as const;
export type Weekday = (typeof WEEKDAYS)[number];

export interface ValueCondition {
  type: ValueConditionType;
  values: string[];
}

export interface TimeRangeCondition {
  type: "time_range";
  /** "HH:MM", 24-hour, inclusive. */
  start: string;
  /** "HH:MM", 24-hour, exclusive; earlier than start means the range crosses midnight. */
  end: string;
  days?: Weekday[];
  /** IANA name; UTC when omitted. */
  timezone?: string;
}

export interface CustomCondition {
  type: "custom";
  /** Dotted path into PolicyContext.attributes, e.g. "context.department". */
  attribute: string;
  equals: unknown;
}

export type Condition = ValueCondition | TimeRangeCondition | CustomCondition;

export type ConditionCheck = (ctx: PolicyContext) => boolean;

export interface Cidr {
  address: string;
  prefix: number;
  family: "ipv4" | "ipv6";
}

/** "10.0.0.0/8" or "2001:db8::/32" → its parts; undefined when it is not a CIDR range. */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf("/");
  if (slash < 0) return undefined;
  const address = text.slice(0, slash);
  const prefixText = text.slice(slash + 1);
  // A zone index (fe80::1%eth0) names an interface of one host, which makes no sense in a range.
  if (!/^\d{1,3}$/.test(prefixText) || address.includes("%")) return undefined;
  const version = isIP(address);
  if (version === 0) return undefined;
  const prefix = Number(prefixText);
  if (prefix > (version === 4 ? 32 : 128)) return undefined;
  return { address, prefix, family: version === 4 ? "ipv4" : "ipv6" };
}

const HH_MM = /^([01]\d|2[0-3]):([0-5]\d)$/;

/** "HH:MM" → minutes since midnight; undefined when malformed. */
export function parseClock(text: string): number | undefined {
  const match = HH_MM.exec(text);
  if (!match) return undefined;
  return Number(match[1]) * 60 + Number(match[2]);
}

// Building a DateTimeFormat costs far more than using one, and the set of zones in use is small.
const clockFormats = new Map<string, Intl.DateTimeFormat>();

function clockFormat(timeZone: string): Intl.DateTimeFormat {
  let format = clockFormats.get(timeZone);
  if (!format) {
    // Throws RangeError for a zone Intl does not know, which is how validation detects one.
    format = new Intl.DateTimeFormat("en-US", {
      timeZone,
      weekday: "short",
      hour: "2-digit",
      minute: "2-digit",
      hourCycle: "h23",
    });
    clockFormats.set(timeZone, format);
  }
  return format;
}

/** True when Intl knows `timeZone` (IANA names such as "Europe/Paris", and "UTC"). */
export function isKnownTimeZone(timeZone: string): boolean {
  try {
    clockFormat(timeZone);
    return true;
  } catch {
    return false;
  }
}

const WEEKDAY_BY_SHORT_NAME: Record<string, number> = {
  Sun: 0,
  Mon: 1,
  Tue: 2,
  Wed: 3,
  Thu: 4,
  Fri: 5,
  Sat: 6,
};

/** The wall-clock weekday (0 = Sunday) and minute of day at `now` in `timeZone`. */
export function localClock(now: Date, timeZone: string): { weekday: number; minutes: number } {
  let weekday = Number.NaN;
  let hour = Number.NaN;
  let minute = Number.NaN;
  for (const part of clockFormat(timeZone).formatToParts(now)) {
    if (part.type === "weekday") weekday = WEEKDAY_BY_SHORT_NAME[part.value] ?? Number.NaN;
    else if (part.type === "hour") hour = Number(part.value);
    else if (part.type === "minute") minute = Number(part.value);
  }
  if (Number.isNaN(weekday + hour + minute)) throw new Error(`cannot read the time in ${timeZone}`);
  return { weekday, minutes: hour * 60 + minute };
}

function compileTimeRange(condition: TimeRangeCondition): ConditionCheck {
  const start = parseClock(condition.start);
  const end = parseClock(condition.end);
  if (start === undefined || end === undefined) throw new Error("time_range has a malformed start or end");
  const timeZone = condition.timezone ?? "UTC";
  const days = condition.days ? new Set(condition.days.map((day) => WEEKDAYS.indexOf(day))) : undefined;
  const onDay = (weekday: number) => days === undefined || days.has(weekday);
  return (ctx) => {
    const { weekday, minutes } = localClock(ctx.now, timeZone);
    if (start < end) return onDay(weekday) && minutes >= start && minutes < end;
    // Across midnight, a range belongs to the day it starts on: "fri 22:00–06:00" covers
    // Saturday 03:00, so the early-morning part is checked against the previous day.
    if (minutes >= start) return onDay(weekday);
    return minutes < end && onDay((weekday + 6) % 7);
  };
}

/**
 * A caller address without brackets or zone index, an IPv4-mapped IPv6 address
 * (::ffff:10.0.0.1, as a dual-stack listener reports IPv4 callers) as plain IPv4;
 * undefined when it is not an IP address.
 */
export function normalizeAddress(ip: string): { address: string; family: "ipv4" | "ipv6" } | undefined {
  const bare = ip.replace(/^\[(.*)\]$/, "$1").replace(/%.*$/, "");
  const address = /^::ffff:(\d{1,3}(\.\d{1,3}){3})$/i.exec(bare)?.[1] ?? bare;
  const version = isIP(address);
  if (version === 0) return undefined;
  return { address, family: version === 4 ? "ipv4" : "ipv6" };
}

function compileIpRanges(ranges: string[]): ConditionCheck {
  const list = new BlockList();
  for (const range of ranges) {
    const cidr = parseCidr(range);
    if (!cidr) throw new Error(`"${range}" is not a CIDR range`);
    list.addSubnet(cidr.address, cidr.prefix, cidr.family);
  }
  return (ctx) => {
    const caller = ctx.ip === undefined ? undefined : normalizeAddress(ctx.ip);
    return caller !== undefined && list.check(caller.address, caller.family);
  };
}

/** The value at a dotted path, following own properties only (never the prototype chain). */
function valueAtPath(root: unknown, path: string): { found: boolean; value?: unknown } {
  let current = root;
  for (const segment of path.split(".")) {
    if (typeof current !== "object" || current === null || !Object.hasOwn(current, segment)) {
      return { found: false };
    }
    current = (current as Record<string, unknown>)[segment];
  }
  return { found: true, value: current };
}

/**
 * Equality of JSON values: object keys in any order. Unlike util.isDeepStrictEqual it
 * ignores prototypes, so an attribute object built with Object.create(null) still matches.
 */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    return (
      Array.isArray(a) &&
      Array.isArray(b) &&
      a.length === b.length &&
      a.every((item, index) => jsonEqual(item, b[index]))
    );
  }
  const aKeys = Object.keys(a);
  const bRecord = b as Record<string, unknown>;
  return (
    aKeys.length === Object.keys(b).length &&
    aKeys.every(
      (key) => Object.hasOwn(b, key) && jsonEqual((a as Record<string, unknown>)[key], bRecord[key]),
    )
  );
}

function compileValues(condition: ValueCondition): ConditionCheck {
  const values = new Set(condition.values);
  switch (condition.type) {
    case "environments":
      return (ctx) => values.has(ctx.environment);
    case "roles":
      return (ctx) => ctx.roles.some((role) => values.has(role));
    case "teams":
      return (ctx) => ctx.team !== null && values.has(ctx.team);
    case "external_systems":
      return (ctx) => ctx.externalSystem !== undefined && values.has(ctx.externalSystem);
    case "external_users": {
      // Ids are opaque and compared exactly; e-mail addresses are compared without case,
      // as mail systems treat them.
      const emails = new Set(condition.values.map((value) => value.toLowerCase()));
      return (ctx) =>
        (ctx.externalUserId !== undefined && values.has(ctx.externalUserId)) ||
        (ctx.externalUserEmail !== undefined && emails.has(ctx.externalUserEmail.toLowerCase()));
    }
    case "ip_ranges":
      return compileIpRanges(condition.values);
  }
}

/** Compiles one condition; throws when the condition is malformed (parse it first). */
export function compileCondition(condition: Condition): ConditionCheck {
  switch (condition.type) {
    case "time_range":
      return compileTimeRange(condition);
    case "custom": {
      const { attribute, equals } = condition;
      return (ctx) => {
        const { found, value } = valueAtPath(ctx.attributes, attribute);
        return found && jsonEqual(value, equals);
      };
    }
    default:
      return compileValues(condition);
  }
}

/** All conditions must hold; no condition at all matches everything. */
export function compileConditions(conditions: readonly Condition[]): ConditionCheck {
  const checks = conditions.map(compileCondition);
  return (ctx) => checks.every((check) => check(ctx));
}
