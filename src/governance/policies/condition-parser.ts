import type { FieldError } from "../../errors.js";
import {
  CONDITION_TYPES,
  type Condition,
  type ConditionType,
  isKnownTimeZone,
  parseCidr,
  parseClock,
  type ValueConditionType,
  WEEKDAYS,
  type Weekday,
} from "./conditions.js";

/**
 * Strict validation of policy conditions, from the API or from a stored row, into typed
 * conditions. Every problem is reported with its field path (`conditions[0].values[1]`)
 * so a client can show it next to the input; unknown keys are refused, not ignored,
 * because a misspelt key would otherwise silently widen a policy.
 */

export const MAX_CONDITION_VALUES = 1000;
const MAX_VALUE_LENGTH = 256;
const MAX_ATTRIBUTE_LENGTH = 200;
const ATTRIBUTE_PATH = /^[^.\s]+(\.[^.\s]+)*$/;

const KEYS_BY_TYPE: Record<ConditionType, readonly string[]> = {
  environments: ["type", "values"],
  ip_ranges: ["type", "values"],
  roles: ["type", "values"],
  teams: ["type", "values"],
  external_systems: ["type", "values"],
  external_users: ["type", "values"],
  time_range: ["type", "start", "end", "days", "timezone"],
  custom: ["type", "attribute", "equals"],
};

type Raw = Record<string, unknown>;

function isRecord(value: unknown): value is Raw {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isConditionType(value: unknown): value is ConditionType {
  return typeof value === "string" && (CONDITION_TYPES as readonly string[]).includes(value);
}

function parseValues(type: ValueConditionType, raw: unknown, at: string, errors: FieldError[]): string[] {
  if (!Array.isArray(raw) || raw.length === 0) {
    errors.push({ field: at, message: "must be a non-empty array of strings" });
    return [];
  }
  if (raw.length > MAX_CONDITION_VALUES) {
    errors.push({ field: at, message: `must not have more than ${MAX_CONDITION_VALUES} items` });
    return [];
  }
  const values: string[] = [];
  raw.forEach((value, index) => {
    const field = `${at}[${index}]`;
    if (typeof value !== "string" || value.length === 0 || value.length > MAX_VALUE_LENGTH) {
      errors.push({ field, message: `must be a string of 1 to ${MAX_VALUE_LENGTH} characters` });
    } else if (type === "ip_ranges" && !parseCidr(value)) {
      errors.push({
        field,
        message: `"${value}" is not a CIDR range (e.g. 10.0.0.0/8 or 2001:db8::/32)`,
      });
    } else {
      values.push(value);
    }
  });
  return values;
}

function parseTimeRange(raw: Raw, at: string, errors: FieldError[]): Condition {
  const start = typeof raw.start === "string" ? parseClock(raw.start) : undefined;
  const end = typeof raw.end === "string" ? parseClock(raw.end) : undefined;
  if (start === undefined)
    errors.push({ field: `${at}.start`, message: 'must be a time "HH:MM" (00:00–23:59)' });
  if (end === undefined) errors.push({ field: `${at}.end`, message: 'must be a time "HH:MM" (00:00–23:59)' });
  if (start !== undefined && start === end) {
    errors.push({
      field: `${at}.end`,
      message: "must differ from start (omit the condition to match at any time)",
    });
  }
  const condition: Condition = { type: "time_range", start: String(raw.start), end: String(raw.end) };
  if (raw.days !== undefined) {
    const days = raw.days;
    const valid =
      Array.isArray(days) &&
      days.length > 0 &&
      days.every((day) => (WEEKDAYS as readonly unknown[]).includes(day)) &&
      new Set(days).size === days.length;
    if (valid) condition.days = days as Weekday[];
    else {
      errors.push({
        field: `${at}.days`,
        message: `must be a non-empty list of distinct days among ${WEEKDAYS.join(", ")}`,
      });
    }
  }
  if (raw.timezone !== undefined) {
    if (typeof raw.timezone === "string" && raw.timezone.length > 0 && isKnownTimeZone(raw.timezone)) {
      condition.timezone = raw.timezone;
    } else {
      errors.push({
        field: `${at}.timezone`,
        message: `must be an IANA time zone such as "Europe/Paris" (got ${JSON.stringify(raw.timezone)})`,
      });
    }
  }
  return condition;
}

function parseCustom(raw: Raw, at: string, errors: FieldError[]): Condition {
  const attribute = raw.attribute;
  if (
    typeof attribute !== "string" ||
    attribute.length > MAX_ATTRIBUTE_LENGTH ||
    !ATTRIBUTE_PATH.test(attribute)
  ) {
    errors.push({
      field: `${at}.attribute`,
      message: 'must be a dotted path into the request attributes, e.g. "context.department"',
    });
  }
  if (!Object.hasOwn(raw, "equals")) errors.push({ field: `${at}.equals`, message: "is required" });
  return { type: "custom", attribute: String(attribute), equals: raw.equals };
}

function parseCondition(raw: unknown, at: string, errors: FieldError[]): Condition | undefined {
  if (!isRecord(raw)) {
    errors.push({ field: at, message: "must be an object with a type" });
    return undefined;
  }
  const type = raw.type;
  if (!isConditionType(type)) {
    errors.push({ field: `${at}.type`, message: `must be one of: ${CONDITION_TYPES.join(", ")}` });
    return undefined;
  }
  const allowed = KEYS_BY_TYPE[type];
  for (const key of Object.keys(raw)) {
    if (!allowed.includes(key))
      errors.push({ field: `${at}.${key}`, message: `is not allowed in a ${type} condition` });
  }
  if (type === "time_range") return parseTimeRange(raw, at, errors);
  if (type === "custom") return parseCustom(raw, at, errors);
  return { type, values: parseValues(type, raw.values, `${at}.values`, errors) };
}

/** Validates a list of conditions; `conditions` is only meaningful when `errors` is empty. */
export function parseConditions(
  raw: unknown,
  field = "conditions",
): { conditions: Condition[]; errors: FieldError[] } {
  const errors: FieldError[] = [];
  if (!Array.isArray(raw)) return { conditions: [], errors: [{ field, message: "must be an array" }] };
  const conditions: Condition[] = [];
  raw.forEach((item, index) => {
    const condition = parseCondition(item, `${field}[${index}]`, errors);
    if (condition) conditions.push(condition);
  });
  return { conditions, errors };
}
