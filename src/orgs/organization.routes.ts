import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import Type from "typebox";
import { requestContext } from "../auth/access-control.js";
import type { OrganizationRow } from "../db/schema.js";
import { API_SECURITY, errorResponses } from "../http/openapi.js";
import { PageQuery, Paginated, pageRequest, toPage } from "../http/pagination.js";
import type { OrganizationService } from "./organization.service.js";

const tags = ["Organizations"];

const Organization = Type.Object({
  id: Type.String(),
  name: Type.String(),
  created_at: Type.String({ format: "date-time" }),
});

function toOrganizationView(row: OrganizationRow) {
  return { id: row.id, name: row.name, created_at: row.createdAt.toISOString() };
}

export function organizationRoutes(organizations: OrganizationService): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.post(
      "/orgs",
      {
        config: { permission: "organizations:manage" },
        schema: {
          summary: "Create an organization (platform admins)",
          tags,
          security: API_SECURITY,
          body: Type.Object(
            { name: Type.String({ minLength: 1, maxLength: 200, pattern: "\\S" }) },
            { additionalProperties: false },
          ),
          response: { 201: Organization, ...errorResponses(400, 401, 403, 409) },
        },
      },
      async (request, reply) => {
        const row = await organizations.create(request.body.name, requestContext(request));
        return reply.status(201).send(toOrganizationView(row));
      },
    );

    app.get(
      "/orgs",
      {
        config: { permission: "organizations:manage" },
        schema: {
          summary: "List organizations (platform admins)",
          tags,
          security: API_SECURITY,
          querystring: Type.Object(PageQuery, { additionalProperties: false }),
          response: { 200: Paginated(Organization), ...errorResponses(400, 401, 403) },
        },
      },
      async (request) => {
        const page = pageRequest(request.query);
        const { rows, total } = await organizations.list(page);
        return toPage(rows.map(toOrganizationView), total, page);
      },
    );
  };
}
