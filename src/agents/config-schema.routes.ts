import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import Type, { type TSchema } from "typebox";
import { ApprovalConfig } from "../approvals/approval-config.js";
import { API_SECURITY, errorResponses } from "../http/openapi.js";
import { AUTH_TYPES, type AuthType, PLATFORMS, type Platform } from "./agent-kinds.js";
import { AUTH_CONFIG_SPECS } from "./auth-config.js";
import type { ConfigSpec } from "./config-schema.js";
import { BudgetConfig, RateLimitConfig } from "./governance-config.js";
import { PLATFORM_CONFIG_SPECS } from "./platform-config.js";

/** One config form: its JSON Schema and which of its fields are secrets or URLs. */
export interface ConfigForm {
  schema: Record<string, unknown>;
  secret_fields: string[];
  url_fields: string[];
}

/** The governance sections of an agent's registration body. */
export const GOVERNANCE_SECTIONS = ["rate_limit_config", "budget_config", "approval_config"] as const;
export type GovernanceSection = (typeof GOVERNANCE_SECTIONS)[number];

export interface ConfigSchemaCatalog {
  platforms: Record<Platform, ConfigForm>;
  auth_types: Record<AuthType, ConfigForm>;
  governance: Record<GovernanceSection, ConfigForm>;
}

/**
 * The schemas CreateAgentBody validates the governance sections with. approval_config is
 * also nullable there (null removes the rules on PATCH); a form fills in the object.
 */
const GOVERNANCE_SPECS: Record<GovernanceSection, { schema: TSchema; title: string; description: string }> = {
  rate_limit_config: {
    schema: RateLimitConfig,
    title: "Rate limits",
    description:
      "rate_limit_config of an agent: calls allowed per sliding window, agent-wide and per external user",
  },
  budget_config: {
    schema: BudgetConfig,
    title: "Budget",
    description: "budget_config of an agent: cost caps and what happens when they are reached",
  },
  approval_config: {
    schema: ApprovalConfig,
    title: "Approval rules",
    description:
      "approval_config of an agent: what makes a call wait for a person's approval, and who gives it",
  },
};

const ConfigFormSchema = Type.Object({
  schema: Type.Record(Type.String(), Type.Unknown(), {
    description:
      "JSON Schema of the config object; the root and every field carry a title to label a form with, and a description to explain it (platforms and auth types: every field; governance: where Steward has one)",
  }),
  secret_fields: Type.Array(Type.String(), {
    description:
      "Dotted paths of secret fields (`headers.*`: every value of that map). Stored encrypted, answered masked (`****abcd`); sending a mask back keeps the stored value",
  }),
  url_fields: Type.Array(Type.String(), {
    description: "Fields holding URLs Steward will call: absolute http(s), checked against the SSRF guard",
  }),
});

const keyedBy = <K extends string>(keys: readonly K[]) =>
  Type.Object(
    Object.fromEntries(keys.map((key) => [key, ConfigFormSchema])) as Record<K, typeof ConfigFormSchema>,
  );

const ConfigSchemas = Type.Object({
  platforms: keyedBy(PLATFORMS),
  auth_types: keyedBy(AUTH_TYPES),
  governance: keyedBy(GOVERNANCE_SECTIONS),
});

/** Words that a plain capitalisation would spell wrong in a label. */
const SPELLING: Record<string, string> = {
  api: "API",
  hmac: "HMAC",
  http: "HTTP",
  id: "ID",
  oauth2: "OAuth2",
  url: "URL",
};

/** "webhook_url" → "Webhook URL", "custom_http" → "Custom HTTP". */
export function labelOf(name: string): string {
  const words = name.split("_").map((word) => SPELLING[word] ?? word);
  const [first = "", ...rest] = words;
  return [first.charAt(0).toUpperCase() + first.slice(1), ...rest].join(" ");
}

/** Gives every property of `schema` (recursively) a title from its name where it has none. */
function withTitles(schema: Record<string, unknown>): Record<string, unknown> {
  const properties = schema.properties as Record<string, Record<string, unknown>> | undefined;
  if (!properties) return schema;
  return {
    ...schema,
    properties: Object.fromEntries(
      Object.entries(properties).map(([name, property]) => [
        name,
        withTitles({ title: labelOf(name), ...property }),
      ]),
    ),
  };
}

function toForm(spec: ConfigSpec, title: string, description: string): ConfigForm {
  // TypeBox keeps its bookkeeping (`~kind`, `~optional`) in non-enumerable keys: a JSON
  // round trip leaves the plain JSON Schema a client sees.
  const schema = JSON.parse(JSON.stringify(spec.schema)) as Record<string, unknown>;
  return {
    schema: withTitles({ title, description, ...schema }),
    secret_fields: [...spec.secretPaths],
    url_fields: [...spec.urlFields],
  };
}

// Object.fromEntries cannot know that every key of the spec table comes back.
function forms<K extends string>(
  specs: Record<K, ConfigSpec>,
  describe: (kind: K) => string,
): Record<K, ConfigForm> {
  return Object.fromEntries(
    (Object.entries(specs) as Array<[K, ConfigSpec]>).map(([kind, spec]) => [
      kind,
      toForm(spec, labelOf(kind), describe(kind)),
    ]),
  ) as Record<K, ConfigForm>;
}

/** The registration forms of every platform, auth type and governance section, as plain JSON. */
export function configSchemaCatalog(): ConfigSchemaCatalog {
  return {
    platforms: forms(PLATFORM_CONFIG_SPECS, (kind) => `platform_config of an agent with platform ${kind}`),
    auth_types: forms(AUTH_CONFIG_SPECS, (kind) => `auth_config of an agent with auth_type ${kind}`),
    governance: Object.fromEntries(
      GOVERNANCE_SECTIONS.map((section) => {
        const { schema, title, description } = GOVERNANCE_SPECS[section];
        // No governance field is a secret or a URL Steward calls.
        return [section, toForm({ schema, secretPaths: [], urlFields: [] }, title, description)];
      }),
    ) as Record<GovernanceSection, ConfigForm>,
  };
}

/** The JSON Schemas a dashboard generates its registration forms from. */
export function configSchemaRoutes(): FastifyPluginAsyncTypebox {
  // The specs are fixed at build time: computed once, answered as they are.
  const catalog = configSchemaCatalog();
  return async (app) => {
    app.get(
      "/external-agents/config-schemas",
      {
        config: { permission: "external_agents:read" },
        schema: {
          summary:
            "JSON Schemas of platform_config (per platform), auth_config (per auth type) and the governance sections",
          description:
            "What POST and PATCH /external-agents validate platform_config, auth_config, rate_limit_config, budget_config and approval_config against, for generating registration forms. governance.approval_config is the object form; PATCH also takes null there to remove the rules. secret_fields name the fields stored encrypted and answered masked; url_fields the ones that must be absolute http(s) URLs Steward may call (none of the governance sections has either).",
          tags: ["External agents"],
          security: API_SECURITY,
          response: { 200: ConfigSchemas, ...errorResponses(401, 403) },
        },
      },
      async () => catalog,
    );
  };
}
