import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import Type from "typebox";
import type { ApiKeyRow } from "../db/schema.js";
import { AppError } from "../errors.js";
import { API_SECURITY, errorResponses } from "../http/openapi.js";
import { PageQuery, Paginated, pageRequest, toPage } from "../http/pagination.js";
import type { OrganizationService } from "../orgs/organization.service.js";
import { requestContext, targetOrganization } from "./access-control.js";
import type { ApiKeyService } from "./api-key.service.js";
import { ROLES, type Role } from "./permissions.js";

const tags = ["API keys"];

const ApiKey = Type.Object({
  id: Type.String({ description: "key_…" }),
  name: Type.String(),
  prefix: Type.String({ description: "The key's first characters, to recognise it" }),
  role: Type.Enum(ROLES),
  organization_id: Type.String(),
  team: Type.Union([Type.String(), Type.Null()]),
  platform_admin: Type.Boolean(),
  created_at: Type.String({ format: "date-time" }),
  expires_at: Type.Union([Type.String({ format: "date-time" }), Type.Null()]),
  revoked_at: Type.Union([Type.String({ format: "date-time" }), Type.Null()]),
});

const CreatedApiKey = Type.Object({
  id: Type.String(),
  key: Type.String({ description: "The secret key. Shown only in this response." }),
  prefix: Type.String(),
  role: Type.Enum(ROLES),
  organization_id: Type.String(),
  name: Type.String(),
  expires_at: Type.Union([Type.String({ format: "date-time" }), Type.Null()]),
});

const CreateApiKeyBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200, pattern: "\\S" }),
    role: Type.Enum(ROLES),
    team: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    organization_id: Type.Optional(Type.String({ minLength: 1, description: "Platform admins only" })),
    expires_at: Type.Optional(Type.String({ format: "date-time" })),
  },
  { additionalProperties: false },
);

function toApiKeyView(row: ApiKeyRow) {
  return {
    id: row.id,
    name: row.name,
    prefix: row.prefix,
    role: row.role as Role,
    organization_id: row.organizationId,
    team: row.team,
    platform_admin: row.platformAdmin,
    created_at: row.createdAt.toISOString(),
    expires_at: row.expiresAt?.toISOString() ?? null,
    revoked_at: row.revokedAt?.toISOString() ?? null,
  };
}

export function apiKeyRoutes(
  keys: ApiKeyService,
  organizations: OrganizationService,
): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.post(
      "/api-keys",
      {
        config: { permission: "api_keys:manage" },
        schema: {
          summary: "Create an API key (the key is shown once, in this response)",
          tags,
          security: API_SECURITY,
          body: CreateApiKeyBody,
          response: { 201: CreatedApiKey, ...errorResponses(400, 401, 403, 404) },
        },
      },
      async (request, reply) => {
        const body = request.body;
        const organizationId = targetOrganization(request, body.organization_id, "organizations:manage");
        if (!(await organizations.exists(organizationId))) {
          throw new AppError("NOT_FOUND", `organization ${organizationId} not found`);
        }
        const { row, key } = await keys.create(
          {
            organizationId,
            name: body.name,
            role: body.role,
            team: body.team,
            expiresAt: body.expires_at ? new Date(body.expires_at) : null,
          },
          requestContext(request),
        );
        return reply.status(201).send({
          id: row.id,
          key,
          prefix: row.prefix,
          role: row.role as Role,
          organization_id: row.organizationId,
          name: row.name,
          expires_at: row.expiresAt?.toISOString() ?? null,
        });
      },
    );

    app.get(
      "/api-keys",
      {
        config: { permission: "api_keys:manage" },
        schema: {
          summary: "List API keys (never the keys themselves)",
          tags,
          security: API_SECURITY,
          querystring: Type.Object(
            {
              ...PageQuery,
              organization_id: Type.Optional(Type.String({ description: "Platform admins only" })),
            },
            { additionalProperties: false },
          ),
          response: { 200: Paginated(ApiKey), ...errorResponses(400, 401, 403) },
        },
      },
      async (request) => {
        const organizationId = targetOrganization(
          request,
          request.query.organization_id,
          "organizations:manage",
        );
        const page = pageRequest(request.query);
        const { rows, total } = await keys.list(organizationId, page);
        return toPage(rows.map(toApiKeyView), total, page);
      },
    );

    app.delete(
      "/api-keys/:id",
      {
        config: { permission: "api_keys:manage" },
        schema: {
          summary: "Revoke an API key",
          tags,
          security: API_SECURITY,
          params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) }),
          querystring: Type.Object(
            { organization_id: Type.Optional(Type.String({ description: "Platform admins only" })) },
            { additionalProperties: false },
          ),
          response: { 204: Type.Null({ description: "Revoked" }), ...errorResponses(401, 403, 404) },
        },
      },
      async (request, reply) => {
        const organizationId = targetOrganization(
          request,
          request.query.organization_id,
          "organizations:manage",
        );
        await keys.revoke(organizationId, request.params.id, requestContext(request));
        return reply.status(204).send(null);
      },
    );
  };
}
