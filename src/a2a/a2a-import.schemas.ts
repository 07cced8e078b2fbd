import Type, { type Static } from "typebox";
import { CreateAgentBody } from "../agents/agent.schemas.js";

/**
 * POST /api/v1/external-agents/import: a card (by URL or inline) and the registration
 * settings Steward adds to it; what the card itself says (platform, endpoint,
 * description, capabilities) is not taken from the request.
 */
const settings = Type.Partial(
  Type.Omit(CreateAgentBody, ["platform", "webhook_url", "description", "capabilities"]),
).properties;

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
    ...settings,
  },
  { additionalProperties: false },
);
export type ImportAgentBody = Static<typeof ImportAgentBody>;

export const AgentCardRecord = Type.Object({
  fetched_at: Type.String({ format: "date-time" }),
  source_url: Type.Union([Type.String(), Type.Null()], { description: "Null when the card was sent inline" }),
  card: Type.Record(Type.String(), Type.Unknown()),
});
