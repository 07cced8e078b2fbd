import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import Type from "typebox";
import { AgentIdParams } from "../agents/agent.schemas.js";
import type { ExternalAgentService } from "../agents/agent.service.js";
import { requestContext } from "../auth/access-control.js";
import type { ApprovalRow } from "../db/schema.js";
import { API_SECURITY, errorResponses, Nullable } from "../http/openapi.js";
import { PageQuery, Paginated, pageRequest, toPage } from "../http/pagination.js";
import type { InvocationService } from "../invocation/invocation.service.js";
import type { ApprovalService } from "./approval.service.js";

const tags = ["Approvals"];
const STATUSES = ["pending", "approved", "rejected", "expired"] as const;

const Approval = Type.Object({
  id: Type.String({ description: "apr_…" }),
  invocation_id: Type.String(),
  external_agent_id: Type.String(),
  status: Type.Enum(STATUSES),
  reasons: Type.Array(Type.String()),
  summary: Type.String({ description: "The input, with secrets and sensitive data masked" }),
  requester: Type.Object({ principal_id: Type.String(), external_user: Nullable(Type.String()) }),
  required_approvals: Type.Integer(),
  approver_roles: Type.Array(Type.String()),
  approver_users: Type.Array(Type.String()),
  expires_at: Type.String({ format: "date-time" }),
  escalated_at: Nullable(Type.String({ format: "date-time" })),
  decided_at: Nullable(Type.String({ format: "date-time" })),
  decision_reason: Nullable(Type.String()),
  created_at: Type.String({ format: "date-time" }),
});

const Decision = Type.Object({
  approver_id: Type.String(),
  decision: Type.String(),
  reason: Nullable(Type.String()),
  created_at: Type.String({ format: "date-time" }),
});

const DecisionAnswer = Type.Object({
  approval: Approval,
  approvals: Type.Integer({ description: "Approvals so far" }),
  invocation_status: Type.String({ description: "The call's status after this decision" }),
});

function toApproval(row: ApprovalRow) {
  const workflow = row.workflow as { approver_roles?: string[]; approver_users?: string[] };
  return {
    id: row.id,
    invocation_id: row.invocationId,
    external_agent_id: row.externalAgentId,
    status: row.status as (typeof STATUSES)[number],
    reasons: row.reasons,
    summary: row.summary,
    requester: { principal_id: row.requesterPrincipalId, external_user: row.requesterExternalUser },
    required_approvals: row.requiredApprovals,
    approver_roles: workflow.approver_roles ?? [],
    approver_users: workflow.approver_users ?? [],
    expires_at: row.expiresAt.toISOString(),
    escalated_at: row.escalatedAt?.toISOString() ?? null,
    decided_at: row.decidedAt?.toISOString() ?? null,
    decision_reason: row.decisionReason,
    created_at: row.createdAt.toISOString(),
  };
}

const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });

export function approvalRoutes(
  approvals: ApprovalService,
  invocations: InvocationService,
  agents: ExternalAgentService,
): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get(
      "/approvals",
      {
        config: { permission: "approvals:read" },
        schema: {
          summary: "Approval requests, newest first",
          tags,
          security: API_SECURITY,
          querystring: Type.Object(
            {
              ...PageQuery,
              status: Type.Optional(Type.Enum(STATUSES)),
              external_agent_id: Type.Optional(Type.String()),
              requester: Type.Optional(Type.String({ description: "Principal id or external user" })),
            },
            { additionalProperties: false },
          ),
          response: { 200: Paginated(Approval), ...errorResponses(400, 401, 403) },
        },
      },
      async (request) => {
        const page = pageRequest(request.query);
        const { status, external_agent_id, requester } = request.query;
        const { rows, total } = await approvals.list(
          request.principal.organizationId,
          { status, externalAgentId: external_agent_id, requester },
          page,
        );
        return toPage(rows.map(toApproval), total, page);
      },
    );

    app.get(
      "/approvals/:id",
      {
        config: { permission: "approvals:read" },
        schema: {
          summary: "One approval request with its decisions",
          tags,
          security: API_SECURITY,
          params: IdParams,
          response: {
            200: Type.Object({ ...Approval.properties, decisions: Type.Array(Decision) }),
            ...errorResponses(401, 403, 404),
          },
        },
      },
      async (request) => {
        const row = await approvals.get(request.principal.organizationId, request.params.id);
        const decisions = await approvals.decisions(row.id);
        return {
          ...toApproval(row),
          decisions: decisions.map((decision) => ({
            approver_id: decision.approverId,
            decision: decision.decision,
            reason: decision.reason,
            created_at: decision.createdAt.toISOString(),
          })),
        };
      },
    );

    app.get(
      "/external-agents/:id/approvals/pending",
      {
        config: { permission: "approvals:read" },
        schema: {
          summary: "An agent's requests waiting for a decision",
          tags,
          security: API_SECURITY,
          params: AgentIdParams,
          querystring: Type.Object(PageQuery, { additionalProperties: false }),
          response: { 200: Paginated(Approval), ...errorResponses(401, 403, 404) },
        },
      },
      async (request) => {
        const organizationId = request.principal.organizationId;
        const agent = await agents.get(organizationId, request.params.id);
        const page = pageRequest(request.query);
        const { rows, total } = await approvals.list(
          organizationId,
          { status: "pending", externalAgentId: agent.id },
          page,
        );
        return toPage(rows.map(toApproval), total, page);
      },
    );

    for (const decision of ["approve", "reject"] as const) {
      app.post(
        `/approvals/:id/${decision}`,
        {
          config: { permission: "approvals:approve" },
          schema: {
            summary:
              decision === "approve"
                ? "Approve a request; with enough approvals the call runs"
                : "Reject a request (a reason is required); the call does not run",
            tags,
            security: API_SECURITY,
            params: IdParams,
            body: Type.Object(
              decision === "approve"
                ? { reason: Type.Optional(Type.String({ maxLength: 2000 })) }
                : { reason: Type.String({ minLength: 1, maxLength: 2000 }) },
              { additionalProperties: false },
            ),
            response: { 200: DecisionAnswer, ...errorResponses(400, 401, 403, 404, 409, 410) },
          },
        },
        async (request) => {
          const result = await approvals.decide(
            request.principal.organizationId,
            request.params.id,
            request.principal,
            decision,
            request.body?.reason,
            requestContext(request),
            new Date(),
          );
          if (result.state === "pending") {
            return {
              approval: toApproval(result.approval),
              approvals: result.approvals,
              invocation_status: "pending_approval",
            };
          }
          const invocation = await invocations.settleApproval(result.approval);
          await approvals.recordOutcome(result.approval, invocation.status);
          const tally = await approvals.decisions(result.approval.id);
          return {
            approval: toApproval(result.approval),
            approvals: tally.filter((entry) => entry.decision === "approve").length,
            invocation_status: invocation.status,
          };
        },
      );
    }
  };
}
