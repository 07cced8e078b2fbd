import { createHash } from "node:crypto";
import { canonicalJson } from "../../lineage/lineage-hash.js";

/** What makes two calls "the same call" for an approval. */
export interface FingerprintParts {
  agentId: string;
  input: string;
  context: Record<string, unknown>;
  identity: { userId?: string; userEmail?: string; system?: string; principalId: string };
}

/**
 * SHA-256 (hex) of the parts as canonical JSON, so the same call gives the same
 * fingerprint whatever the order of keys in its context. Values are taken exactly as
 * given: undefined fields count as absent, but no case or whitespace is folded, since
 * an approver approved these bytes.
 */
export function approvalFingerprint(parts: FingerprintParts): string {
  const { agentId, input, context, identity } = parts;
  // Copy the named fields only: a wider identity object (a session or trace id) must
  // not make every call of one person look new.
  const { userId, userEmail, system, principalId } = identity;
  const canonical = canonicalJson({
    agentId,
    input,
    context,
    identity: { userId, userEmail, system, principalId },
  });
  return createHash("sha256").update(canonical).digest("hex");
}
