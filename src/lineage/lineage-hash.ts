import { createHash } from "node:crypto";
import type { InvocationRow } from "../db/schema.js";

/**
 * How a lineage record is hashed. The record hash chains the previous record's hash
 * with three component hashes — identity, bodies, and the rest — so a GDPR redaction
 * can blank identity and bodies while the stored component hashes keep the chain
 * verifiable.
 */

export const GENESIS_HASH = "0".repeat(64);

/**
 * JSON with object keys sorted at every level, so equal values always hash equally.
 * Written as plain loops: every call is hashed with it, several times over.
 */
export function canonicalJson(value: unknown): string {
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  if (Array.isArray(value)) {
    let json = "[";
    for (let index = 0; index < value.length; index++) {
      if (index > 0) json += ",";
      json += canonicalJson(value[index]);
    }
    return `${json}]`;
  }
  if (value !== null && typeof value === "object") {
    return canonicalFields(value as Record<string, unknown>, Object.keys(value).sort());
  }
  return JSON.stringify(value ?? null);
}

/** `record` restricted to `sortedKeys` as canonical JSON; undefined members are left out. */
function canonicalFields(record: Record<string, unknown>, sortedKeys: readonly string[]): string {
  let json = "{";
  for (const key of sortedKeys) {
    const item = record[key];
    if (item === undefined) continue;
    if (json.length > 1) json += ",";
    json += `${JSON.stringify(key)}:${canonicalJson(item)}`;
  }
  return `${json}}`;
}

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

/** The fields a GDPR redaction blanks, by component. */
export const IDENTITY_FIELDS = [
  "externalUserId",
  "externalUserEmail",
  "externalUserName",
  "externalUserRole",
  "externalSystem",
  "externalSessionId",
  "externalTraceId",
  "externalContext",
  "requestIp",
  "userAgent",
] as const satisfies ReadonlyArray<keyof InvocationRow>;

export const BODY_FIELDS = ["requestBody", "responseBody", "errorMessage"] as const satisfies ReadonlyArray<
  keyof InvocationRow
>;

/** What a redacted record holds in place of its identity and bodies. */
export const REDACTED_VALUES = Object.fromEntries(
  [...IDENTITY_FIELDS, ...BODY_FIELDS].map((field) => [field, null]),
) as {
  [K in (typeof IDENTITY_FIELDS)[number] | (typeof BODY_FIELDS)[number]]: null;
};

const CORE_FIELDS = [
  "id",
  "organizationId",
  "externalAgentId",
  "status",
  "principalType",
  "principalId",
  "apiKeyPrefix",
  "team",
  "agentName",
  "agentEndpoint",
  "agentVersion",
  "traceId",
  "spanId",
  "parentSpanId",
  "parentInvocationId",
  "responseStatus",
  "durationMs",
  "estimatedCost",
  "costUsd",
  "degraded",
  "degradedReasons",
  "governance",
  "policyIds",
  "createdAt",
  "completedAt",
  "chainSeq",
] as const satisfies ReadonlyArray<keyof InvocationRow>;

/** Each component's fields in key order, sorted once rather than for every record. */
const IDENTITY_KEYS = [...IDENTITY_FIELDS].sort();
const BODY_KEYS = [...BODY_FIELDS].sort();
const CORE_KEYS = [...CORE_FIELDS].sort();

/** The hash of the canonical JSON of the record's `sortedKeys` fields. */
function hashFields(row: InvocationRow, sortedKeys: readonly string[]): string {
  return sha256(canonicalFields(row as unknown as Record<string, unknown>, sortedKeys));
}

export interface RecordHashes {
  identityHash: string;
  bodyHash: string;
  recordHash: string;
}

/** Hashes a final record at its place in the chain (its `chainSeq` must be set). */
export function hashRecord(row: InvocationRow, prevHash: string): RecordHashes {
  const identityHash = hashFields(row, IDENTITY_KEYS);
  const bodyHash = hashFields(row, BODY_KEYS);
  return { identityHash, bodyHash, recordHash: chainHash(prevHash, identityHash, bodyHash, row) };
}

export function chainHash(
  prevHash: string,
  identityHash: string,
  bodyHash: string,
  row: InvocationRow,
): string {
  return sha256(`${prevHash}\n${identityHash}\n${bodyHash}\n${hashFields(row, CORE_KEYS)}`);
}

/**
 * Recomputes a stored record's hash. A redacted record must have its identity and
 * bodies blank; its stored component hashes then stand in for the erased content.
 */
export function verifyRecord(row: InvocationRow, prevHash: string): string | null {
  if (row.prevHash !== prevHash) return "prev_hash does not match the previous record";
  let identityHash = hashFields(row, IDENTITY_KEYS);
  let bodyHash = hashFields(row, BODY_KEYS);
  if (row.redactedAt) {
    const blank = [...IDENTITY_FIELDS, ...BODY_FIELDS].every((field) => row[field] === null);
    if (!blank) return "redacted record still holds identity or body data";
    identityHash = row.identityHash ?? "";
    bodyHash = row.bodyHash ?? "";
  } else if (identityHash !== row.identityHash || bodyHash !== row.bodyHash) {
    return "identity or body content does not match its hash";
  }
  return chainHash(prevHash, identityHash, bodyHash, row) === row.recordHash
    ? null
    : "record hash does not match";
}
