import type { Principal } from "../auth/permissions.js";
import type { ExternalAgentRow } from "../db/schema.js";
import type { CallerIdentity } from "./caller-identity.js";

/**
 * The step between budget reservation and the outbound call where a rule may ask for
 * a person's sign-off (src/approvals implements it).
 */
export interface ApprovalGate {
  review(request: {
    invocationId: string;
    agent: ExternalAgentRow;
    input: string;
    context: Record<string, unknown>;
    identity: CallerIdentity;
    principal: Principal;
    environment: string;
    estimatedCost: number;
  }): Promise<ApprovalVerdict>;
}

export type ApprovalVerdict =
  | { required: false }
  | {
      required: true;
      approvalId: string;
      reasons: string[];
      expiresAt: Date;
      /** Set when the same call is already waiting: the invocation that holds the approval. */
      pendingInvocationId?: string;
    };
