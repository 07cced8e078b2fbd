import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import Type from "typebox";
import { requestContext } from "../../auth/access-control.js";
import { API_SECURITY, errorResponses } from "../../http/openapi.js";
import { pageRequest } from "../../http/pagination.js";
import {
  CreatePolicyBody,
  ListPoliciesQuery,
  Policy,
  PolicyIdParams,
  PolicyList,
  UpdatePolicyBody,
} from "./policy.schemas.js";
import type { PolicyService } from "./policy.service.js";

const tags = ["Policies"];
const SEMANTICS =
  "Policies decide whether a call to an external agent may proceed; see docs/policies.md for condition types, Cedar and combining strategies.";

export function policyRoutes(policies: PolicyService): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.post(
      "/policies",
      {
        config: { permission: "policies:manage" },
        schema: {
          summary: "Create an organization policy",
          description: `${SEMANTICS} Conditions and Cedar text are validated; errors name the field.`,
          tags,
          security: API_SECURITY,
          body: CreatePolicyBody,
          response: { 201: Policy, ...errorResponses(400, 401, 403, 409, 413) },
        },
      },
      async (request, reply) => {
        const policy = await policies.create(
          request.principal.organizationId,
          request.body,
          requestContext(request),
        );
        return reply.status(201).send(policy);
      },
    );

    app.get(
      "/policies",
      {
        config: { permission: "policies:manage" },
        schema: {
          summary: "List the organization's policies in evaluation order",
          tags,
          security: API_SECURITY,
          querystring: ListPoliciesQuery,
          response: { 200: PolicyList, ...errorResponses(400, 401, 403) },
        },
      },
      async (request) =>
        policies.list(
          request.principal.organizationId,
          { enabled: request.query.enabled },
          pageRequest(request.query),
        ),
    );

    app.get(
      "/policies/:id",
      {
        config: { permission: "policies:manage" },
        schema: {
          summary: "Read one policy",
          tags,
          security: API_SECURITY,
          params: PolicyIdParams,
          response: { 200: Policy, ...errorResponses(401, 403, 404) },
        },
      },
      async (request) => policies.get(request.principal.organizationId, request.params.id),
    );

    app.patch(
      "/policies/:id",
      {
        config: { permission: "policies:manage" },
        schema: {
          summary: "Change a policy",
          description:
            "The result is validated as a whole: to turn a conditions policy into a Cedar one, send cedar with conditions: [].",
          tags,
          security: API_SECURITY,
          params: PolicyIdParams,
          body: UpdatePolicyBody,
          response: { 200: Policy, ...errorResponses(400, 401, 403, 404, 409, 413) },
        },
      },
      async (request) =>
        policies.update(
          request.principal.organizationId,
          request.params.id,
          request.body,
          requestContext(request),
        ),
    );

    app.delete(
      "/policies/:id",
      {
        config: { permission: "policies:manage" },
        schema: {
          summary: "Delete a policy (for good; the audit log keeps the record)",
          tags,
          security: API_SECURITY,
          params: PolicyIdParams,
          response: { 204: Type.Null({ description: "Deleted" }), ...errorResponses(401, 403, 404) },
        },
      },
      async (request, reply) => {
        await policies.delete(request.principal.organizationId, request.params.id, requestContext(request));
        return reply.status(204).send(null);
      },
    );
  };
}
