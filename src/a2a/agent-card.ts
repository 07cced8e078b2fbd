import Type, { type Static } from "typebox";
import { Compile } from "typebox/compile";
import type { AuthType } from "../agents/agent-kinds.js";
import { type FieldError, ValidationError } from "../errors.js";
import { type SchemaError, toFieldErrors } from "../http/field-errors.js";

/**
 * An A2A Agent Card (protocol 0.3), as far as Steward reads it. Fields Steward does not
 * use are allowed and kept with the card's history.
 */

const open = { additionalProperties: true } as const;
const text = (maxLength: number) => Type.String({ minLength: 1, maxLength });

const AgentSkill = Type.Object(
  {
    id: text(200),
    name: text(200),
    description: Type.String({ maxLength: 4000 }),
    tags: Type.Array(Type.String({ maxLength: 200 }), { maxItems: 100 }),
  },
  open,
);

const SecurityScheme = Type.Object(
  { type: Type.Enum(["apiKey", "http", "oauth2", "openIdConnect", "mutualTLS"]) },
  open,
);

const AgentCard = Type.Object(
  {
    protocolVersion: Type.Optional(text(20)),
    name: text(200),
    description: Type.String({ maxLength: 4000 }),
    url: text(2048),
    version: text(100),
    preferredTransport: Type.Optional(text(50)),
    additionalInterfaces: Type.Optional(
      Type.Array(Type.Object({ url: text(2048), transport: text(50) }, open), { maxItems: 20 }),
    ),
    capabilities: Type.Object({ streaming: Type.Optional(Type.Boolean()) }, open),
    defaultInputModes: Type.Array(Type.String(), { maxItems: 50 }),
    defaultOutputModes: Type.Array(Type.String(), { maxItems: 50 }),
    skills: Type.Array(AgentSkill, { maxItems: 100 }),
    securitySchemes: Type.Optional(Type.Record(Type.String(), SecurityScheme)),
    security: Type.Optional(
      Type.Array(Type.Record(Type.String(), Type.Array(Type.String())), { maxItems: 20 }),
    ),
  },
  open,
);
export type AgentCard = Static<typeof AgentCard>;

const checkCard = Compile(AgentCard);
/** The one transport Steward calls A2A agents over. */
const JSON_RPC = "JSONRPC";

/** `value` as an Agent Card, or a ValidationError naming each field under `card`. */
export function parseAgentCard(value: unknown): AgentCard {
  if (!checkCard.Check(value)) {
    throw new ValidationError(
      toFieldErrors(checkCard.Errors(value) as SchemaError[], "card"),
      "The Agent Card is not valid",
    );
  }
  return value;
}

/** Every transport the card offers, preferred first. */
export function cardTransports(card: AgentCard): { transport: string; url: string }[] {
  return [
    { transport: card.preferredTransport ?? JSON_RPC, url: card.url },
    ...(card.additionalInterfaces ?? []).map(({ transport, url }) => ({ transport, url })),
  ];
}

/** Where the agent takes JSON-RPC calls, or a ValidationError when it offers no such interface. */
export function jsonRpcEndpoint(card: AgentCard): string {
  const endpoint = cardTransports(card).find(({ transport }) => transport.toUpperCase() === JSON_RPC);
  if (!endpoint) {
    throw new ValidationError([
      {
        field: "card.preferredTransport",
        message: "offers no JSONRPC interface, the A2A transport Steward calls",
      },
    ]);
  }
  return endpoint.url;
}

/** An auth type and the settings of it the card gives; the secrets are the user's to add. */
export interface CardAuth {
  authType: AuthType;
  authConfig: Record<string, unknown>;
}

/**
 * How to authenticate to the agent, from the first of the card's security requirements
 * Steward can meet: HTTP bearer or basic, an API key in a header, or OAuth2 client
 * credentials. A card that asks for nothing needs nothing.
 */
export function authFromCard(card: AgentCard): CardAuth {
  const requirements = card.security ?? [];
  if (requirements.length === 0) return { authType: "none", authConfig: {} };
  const problems: FieldError[] = [];
  for (const requirement of requirements) {
    for (const name of Object.keys(requirement)) {
      const scheme = card.securitySchemes?.[name] as Record<string, unknown> | undefined;
      const auth = scheme && authForScheme(scheme);
      if (auth) return auth;
      problems.push({
        field: `card.securitySchemes.${name}`,
        message: scheme
          ? `is a ${String(scheme.type)} scheme Steward cannot authenticate with; give auth_type and auth_config`
          : "is required by card.security but not declared",
      });
    }
  }
  throw new ValidationError(problems, "Steward cannot meet the card's security requirements");
}

function authForScheme(scheme: Record<string, unknown>): CardAuth | undefined {
  if (scheme.type === "http" && typeof scheme.scheme === "string") {
    const kind = scheme.scheme.toLowerCase();
    if (kind === "bearer") return { authType: "bearer_token", authConfig: {} };
    if (kind === "basic") return { authType: "basic", authConfig: {} };
  }
  if (scheme.type === "apiKey" && scheme.in === "header" && typeof scheme.name === "string")
    return { authType: "api_key", authConfig: { header_name: scheme.name } };
  if (scheme.type === "oauth2") {
    const flow = (scheme.flows as Record<string, Record<string, unknown>> | undefined)?.clientCredentials;
    if (flow && typeof flow.tokenUrl === "string") {
      const scopes = Object.keys((flow.scopes as Record<string, unknown> | undefined) ?? {});
      return {
        authType: "oauth2",
        authConfig: { token_url: flow.tokenUrl, ...(scopes.length > 0 ? { scope: scopes.join(" ") } : {}) },
      };
    }
  }
  return undefined;
}

/** What Steward keeps of the card in the agent's `config.a2a`. */
export function a2aSettings(card: AgentCard) {
  return {
    protocol_version: card.protocolVersion ?? null,
    version: card.version,
    streaming: card.capabilities.streaming === true,
    transports: cardTransports(card),
    skills: card.skills.map(({ id, name, description, tags }) => ({ id, name, description, tags })),
  };
}
