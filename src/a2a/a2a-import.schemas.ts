import Type, { type Static } from "typebox";
import { CreateAgentBody } from "../agents/agent.schemas.js";

/** POST /api/v1/external-agents/import: a card (by URL or inline) and the settings Steward adds to it. */
const registration = CreateAgentBody.properties;

export const ImportAgentBody = Type.Object(
  {
    card_url: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 2048,
        description: `The agent's base URL (its card is read from /.well-known/agent-card.json) or the card's own URL`,
      }),
    ),
    card: Type.Optional(
      Type.Record(Type.String(), Type.Unknown(), {
        description: "The Agent Card itself, instead of card_url",
      }),
    ),
    name: Type.Optional(registration.name),
    auth_type: Type.Optional(registration.auth_type),
    auth_config: Type.Optional(registration.auth_config),
    platform_config: Type.Optional(registration.platform_config),
    rate_limit_config: Type.Optional(registration.rate_limit_config),
    budget_config: Type.Optional(registration.budget_config),
    approval_config: Type.Optional(registration.approval_config),
    config: Type.Optional(registration.config),
    tags: Type.Optional(registration.tags),
    status: Type.Optional(registration.status),
    a2a: Type.Optional(registration.a2a),
  },
  { additionalProperties: false },
);
export type ImportAgentBody = Static<typeof ImportAgentBody>;

export const AgentCardRecord = Type.Object({
  fetched_at: Type.String({ format: "date-time" }),
  source_url: Type.Union([Type.String(), Type.Null()], { description: "Null when the card was sent inline" }),
  card: Type.Record(Type.String(), Type.Unknown()),
});
