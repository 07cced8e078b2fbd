import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import Type from "typebox";
import { requestContext } from "../auth/access-control.js";
import { API_SECURITY, errorResponses } from "../http/openapi.js";
import { pageRequest } from "../http/pagination.js";
import {
  ApprovalRule,
  ApprovalRuleIdParams,
  ApprovalRuleList,
  CreateApprovalRuleBody,
  ListApprovalRulesQuery,
  UpdateApprovalRuleBody,
} from "./approval-rule.schemas.js";
import type { ApprovalRuleService } from "./approval-rule.service.js";

const tags = ["Approvals"];
const SEMANTICS =
  "Organization-wide approval rules hold risky calls for sign-off, alongside each agent's approval_config; see docs/approvals.md.";

export function approvalRuleRoutes(rules: ApprovalRuleService): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.post(
      "/approval-rules",
      {
        config: { permission: "policies:manage" },
        schema: {
          summary: "Create an organization approval rule",
          description: `${SEMANTICS} Triggers, workflow and agent ids are validated; errors name the field.`,
          tags,
          security: API_SECURITY,
          body: CreateApprovalRuleBody,
          response: { 201: ApprovalRule, ...errorResponses(400, 401, 403, 409, 413) },
        },
      },
      async (request, reply) => {
        const rule = await rules.create(
          request.principal.organizationId,
          request.body,
          requestContext(request),
        );
        return reply.status(201).send(rule);
      },
    );

    app.get(
      "/approval-rules",
      {
        config: { permission: "policies:manage" },
        schema: {
          summary: "List the organization's approval rules by name",
          tags,
          security: API_SECURITY,
          querystring: ListApprovalRulesQuery,
          response: { 200: ApprovalRuleList, ...errorResponses(400, 401, 403) },
        },
      },
      async (request) =>
        rules.list(
          request.principal.organizationId,
          { enabled: request.query.enabled },
          pageRequest(request.query),
        ),
    );

    app.get(
      "/approval-rules/:id",
      {
        config: { permission: "policies:manage" },
        schema: {
          summary: "Read one approval rule",
          tags,
          security: API_SECURITY,
          params: ApprovalRuleIdParams,
          response: { 200: ApprovalRule, ...errorResponses(401, 403, 404) },
        },
      },
      async (request) => rules.get(request.principal.organizationId, request.params.id),
    );

    app.patch(
      "/approval-rules/:id",
      {
        config: { permission: "policies:manage" },
        schema: {
          summary: "Change an approval rule",
          description: "Fields sent replace the stored ones; the resulting rule is validated as a whole.",
          tags,
          security: API_SECURITY,
          params: ApprovalRuleIdParams,
          body: UpdateApprovalRuleBody,
          response: { 200: ApprovalRule, ...errorResponses(400, 401, 403, 404, 409, 413) },
        },
      },
      async (request) =>
        rules.update(
          request.principal.organizationId,
          request.params.id,
          request.body,
          requestContext(request),
        ),
    );

    app.delete(
      "/approval-rules/:id",
      {
        config: { permission: "policies:manage" },
        schema: {
          summary: "Delete an approval rule (for good; the audit log keeps the record)",
          description: "Approvals it already requested stay pending under their stored workflow.",
          tags,
          security: API_SECURITY,
          params: ApprovalRuleIdParams,
          response: { 204: Type.Null({ description: "Deleted" }), ...errorResponses(401, 403, 404) },
        },
      },
      async (request, reply) => {
        await rules.delete(request.principal.organizationId, request.params.id, requestContext(request));
        return reply.status(204).send(null);
      },
    );
  };
}
