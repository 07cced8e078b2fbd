import type { ExternalAgentRow } from "../db/schema.js";
import type { CallerIdentity } from "./caller-identity.js";

/**
 * The step between budget reservation and the outbound call where a rule may ask for
 * a person's sign-off. The approvals feature plugs in here; without it every call
 * passes.
 */
export interface ApprovalGate {
  review(request: {
    invocationId: string;
    agent: ExternalAgentRow;
    input: string;
    context: Record<string, unknown>;
    identity: CallerIdentity;
    estimatedCost: number;
  }): Promise<ApprovalVerdict>;
}

export type ApprovalVerdict =
  | { required: false }
  | { required: true; approvalId: string; reasons: string[]; expiresAt: Date };

export const NO_APPROVAL_REQUIRED: ApprovalGate = {
  review: async () => ({ required: false }),
};
