import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import Type from "typebox";
import { requestContext } from "../../auth/access-control.js";
import { API_SECURITY, errorResponses } from "../../http/openapi.js";
import { pageRequest } from "../../http/pagination.js";
import {
  CreateWebhookBody,
  ListWebhooksQuery,
  RotateSecretBody,
  UpdateWebhookBody,
  WebhookIdParams,
  WebhookList,
  WebhookSubscription,
} from "./webhook.schemas.js";
import type { WebhookService } from "./webhook.service.js";

const tags = ["Webhooks"];
const SEMANTICS =
  "Events are POSTed to the URL signed per Standard Webhooks; see docs/webhooks.md for payloads and verification.";

export function webhookRoutes(webhooks: WebhookService): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.post(
      "/webhooks",
      {
        config: { permission: "policies:manage" },
        schema: {
          summary: "Subscribe an endpoint to organization events",
          description: `${SEMANTICS} The answer carries the signing secret in full; it is never shown again.`,
          tags,
          security: API_SECURITY,
          body: CreateWebhookBody,
          response: { 201: WebhookSubscription, ...errorResponses(400, 401, 403, 413) },
        },
      },
      async (request, reply) => {
        const subscription = await webhooks.create(
          request.principal.organizationId,
          request.body,
          requestContext(request),
        );
        return reply.status(201).send(subscription);
      },
    );

    app.get(
      "/webhooks",
      {
        config: { permission: "policies:manage" },
        schema: {
          summary: "List the organization's webhook subscriptions (secrets masked)",
          tags,
          security: API_SECURITY,
          querystring: ListWebhooksQuery,
          response: { 200: WebhookList, ...errorResponses(400, 401, 403) },
        },
      },
      async (request) =>
        webhooks.list(
          request.principal.organizationId,
          { active: request.query.active },
          pageRequest(request.query),
        ),
    );

    app.get(
      "/webhooks/:id",
      {
        config: { permission: "policies:manage" },
        schema: {
          summary: "Read one webhook subscription (secret masked)",
          tags,
          security: API_SECURITY,
          params: WebhookIdParams,
          response: { 200: WebhookSubscription, ...errorResponses(401, 403, 404) },
        },
      },
      async (request) => webhooks.get(request.principal.organizationId, request.params.id),
    );

    app.patch(
      "/webhooks/:id",
      {
        config: { permission: "policies:manage" },
        schema: {
          summary: "Change a webhook subscription's URL, events, description or active flag",
          description: "Deliveries already queued for an inactive subscription are not sent.",
          tags,
          security: API_SECURITY,
          params: WebhookIdParams,
          body: UpdateWebhookBody,
          response: { 200: WebhookSubscription, ...errorResponses(400, 401, 403, 404, 413) },
        },
      },
      async (request) =>
        webhooks.update(
          request.principal.organizationId,
          request.params.id,
          request.body,
          requestContext(request),
        ),
    );

    app.delete(
      "/webhooks/:id",
      {
        config: { permission: "policies:manage" },
        schema: {
          summary: "Delete a webhook subscription (for good; its unsent deliveries are cancelled)",
          tags,
          security: API_SECURITY,
          params: WebhookIdParams,
          response: { 204: Type.Null({ description: "Deleted" }), ...errorResponses(401, 403, 404) },
        },
      },
      async (request, reply) => {
        await webhooks.delete(request.principal.organizationId, request.params.id, requestContext(request));
        return reply.status(204).send(null);
      },
    );

    app.post(
      "/webhooks/:id/rotate-secret",
      {
        config: { permission: "policies:manage" },
        schema: {
          summary: "Replace the signing secret, the previous one signing too during an overlap",
          description:
            "The answer carries the new secret in full; it is never shown again. During the overlap each delivery carries two v1 signatures, one per secret.",
          tags,
          security: API_SECURITY,
          params: WebhookIdParams,
          body: RotateSecretBody,
          response: { 200: WebhookSubscription, ...errorResponses(400, 401, 403, 404, 413) },
        },
        // Every field is optional, so a bare POST (no body at all) means "the defaults".
        preValidation: async (request) => {
          request.body ??= {};
        },
      },
      async (request) =>
        webhooks.rotateSecret(
          request.principal.organizationId,
          request.params.id,
          request.body,
          requestContext(request),
        ),
    );
  };
}
