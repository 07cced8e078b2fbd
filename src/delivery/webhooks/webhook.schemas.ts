import Type, { type Static } from "typebox";
import { PageQuery, Paginated } from "../../http/pagination.js";
import { WEBHOOK_EVENT_TYPES } from "./webhook-events.js";

/** Request and response shapes of /api/v1/webhooks, as clients see them. */

/** Seven days: long enough to redeploy every receiver, short enough that a leaked secret dies. */
export const MAX_OVERLAP_SECONDS = 7 * 24 * 3600;
export const DEFAULT_OVERLAP_SECONDS = 24 * 3600;

const WebhookFields = {
  url: Type.String({
    minLength: 1,
    maxLength: 2048,
    description: "The http(s) endpoint events are POSTed to; refused when it leads to a non-public address",
  }),
  events: Type.Array(Type.Enum(WEBHOOK_EVENT_TYPES), {
    minItems: 1,
    uniqueItems: true,
    description: "The event types delivered to this endpoint",
  }),
  description: Type.Union([Type.String({ maxLength: 4000 }), Type.Null()]),
  active: Type.Boolean({ description: "Inactive subscriptions receive nothing (default true)" }),
};

export const CreateWebhookBody = Type.Object(
  {
    url: WebhookFields.url,
    events: WebhookFields.events,
    description: Type.Optional(WebhookFields.description),
    active: Type.Optional(WebhookFields.active),
  },
  { additionalProperties: false },
);
export type CreateWebhookBody = Static<typeof CreateWebhookBody>;

export const UpdateWebhookBody = Type.Object(
  {
    url: Type.Optional(WebhookFields.url),
    events: Type.Optional(WebhookFields.events),
    description: Type.Optional(WebhookFields.description),
    active: Type.Optional(WebhookFields.active),
  },
  { additionalProperties: false },
);
export type UpdateWebhookBody = Static<typeof UpdateWebhookBody>;

export const RotateSecretBody = Type.Object(
  {
    overlap_seconds: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: MAX_OVERLAP_SECONDS,
        description: `How long the previous secret keeps signing beside the new one (default ${DEFAULT_OVERLAP_SECONDS}; 0 drops it at once)`,
      }),
    ),
  },
  { additionalProperties: false },
);
export type RotateSecretBody = Static<typeof RotateSecretBody>;

export const WebhookSubscription = Type.Object({
  id: Type.String({ description: "whk_…" }),
  organization_id: Type.String(),
  url: Type.String(),
  events: Type.Array(Type.Enum(WEBHOOK_EVENT_TYPES)),
  description: Type.Union([Type.String(), Type.Null()]),
  active: Type.Boolean(),
  secret: Type.String({
    description:
      "The whsec_… signing secret: in full only in the create and rotate-secret responses, masked (****abcd) everywhere else",
  }),
  previous_secret_expires_at: Type.Union([Type.String({ format: "date-time" }), Type.Null()], {
    description: "While a rotation's overlap lasts, the previous secret signs too, until this time",
  }),
  created_by: Type.Union([Type.String(), Type.Null()]),
  created_at: Type.String({ format: "date-time" }),
  updated_at: Type.String({ format: "date-time" }),
});
export type WebhookSubscription = Static<typeof WebhookSubscription>;

export const WebhookList = Paginated(WebhookSubscription);

export const ListWebhooksQuery = Type.Object(
  {
    ...PageQuery,
    active: Type.Optional(
      Type.Boolean({ description: "Only active (true) or inactive (false) subscriptions" }),
    ),
  },
  { additionalProperties: false },
);
export type ListWebhooksQuery = Static<typeof ListWebhooksQuery>;

export const WebhookIdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });
