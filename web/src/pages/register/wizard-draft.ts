import type { AuthType, Platform } from "../agents/agent-types";
import { type ConfigForm, configJson, formErrors, type RawObject, toJson } from "./json-schema";

/** The governance sections of an agent, in the order the wizard shows them. */
export const GOVERNANCE_SECTIONS = ["rate_limit_config", "budget_config", "approval_config"] as const;
export type GovernanceSection = (typeof GOVERNANCE_SECTIONS)[number];

/**
 * GET /external-agents/config-schemas: the forms of every platform's and auth type's
 * config, and of the governance sections, from the schemas Steward validates them with.
 */
export interface ConfigCatalog {
  platforms: Record<Platform, ConfigForm>;
  auth_types: Record<AuthType, ConfigForm>;
  governance: Record<GovernanceSection, ConfigForm>;
}

/**
 * Everything typed into the wizard. Auth and platform settings are kept per kind, so
 * switching the platform (or auth type) and back finds what was typed for it before.
 */
export interface Draft {
  name: string;
  description: string;
  tags: string;
  platform: Platform | "";
  webhook_url: string;
  auth_type: AuthType;
  auth: Partial<Record<AuthType, RawObject>>;
  platformSettings: Partial<Record<Platform, RawObject>>;
  rate_limit_config: RawObject;
  budget_config: RawObject;
  approval_config: RawObject;
}

export const EMPTY_DRAFT: Draft = {
  name: "",
  description: "",
  tags: "",
  platform: "",
  webhook_url: "",
  auth_type: "none",
  auth: {},
  platformSettings: {},
  rate_limit_config: {},
  budget_config: {},
  approval_config: {},
};

export const STEPS = [
  { title: "Platform", fields: ["name", "description", "tags", "platform"] },
  { title: "Endpoint and authentication", fields: ["webhook_url", "auth_type", "auth_config"] },
  { title: "Platform settings", fields: ["platform_config"] },
  { title: "Governance", fields: ["rate_limit_config", "budget_config", "approval_config"] },
  { title: "Review", fields: [] },
  { title: "Test invocation", fields: [] },
] as const;

export const REVIEW_STEP = 4;
export const TEST_STEP = 5;

/** The step whose form holds `field` (a server field path such as `platform_config.webhook_url`). */
export function stepOfField(field: string): number {
  const top = field.split(/[.[]/)[0] ?? field;
  const index = STEPS.findIndex((step) => (step.fields as readonly string[]).includes(top));
  return index === -1 ? REVIEW_STEP : index;
}

export function tagsOf(text: string): string[] {
  return [
    ...new Set(
      text
        .split(",")
        .map((tag) => tag.trim())
        .filter(Boolean),
    ),
  ];
}

/** What the form of `step` can see is missing or malformed, keyed by field path. */
export function stepErrors(step: number, draft: Draft, catalog: ConfigCatalog): Record<string, string> {
  switch (step) {
    case 0: {
      const errors: Record<string, string> = {};
      if (!draft.name.trim()) errors.name = "is required";
      if (!draft.platform) errors.platform = "choose where results are delivered";
      return errors;
    }
    case 1: {
      const errors = formErrors(
        catalog.auth_types[draft.auth_type].schema,
        draft.auth[draft.auth_type],
        "auth_config",
      );
      if (!draft.webhook_url.trim()) errors.webhook_url = "is required";
      return errors;
    }
    case 2:
      return draft.platform
        ? formErrors(
            catalog.platforms[draft.platform].schema,
            draft.platformSettings[draft.platform],
            "platform_config",
          )
        : {};
    case 3:
      return Object.assign(
        {},
        ...GOVERNANCE_SECTIONS.map((section) =>
          formErrors(catalog.governance[section].schema, draft[section], section),
        ),
      );
    default:
      return {};
  }
}

/** The body of POST /external-agents; empty optional sections are left out so Steward's defaults apply. */
export function registrationBody(draft: Draft, catalog: ConfigCatalog): Record<string, unknown> {
  const platform = draft.platform as Platform;
  const optional = {
    description: draft.description.trim() || undefined,
    tags: tagsOf(draft.tags).length > 0 ? tagsOf(draft.tags) : undefined,
    ...Object.fromEntries(
      GOVERNANCE_SECTIONS.map((section) => [
        section,
        toJson(catalog.governance[section].schema, draft[section]),
      ]),
    ),
  };
  return {
    name: draft.name.trim(),
    platform,
    webhook_url: draft.webhook_url.trim(),
    auth_type: draft.auth_type,
    auth_config: configJson(catalog.auth_types[draft.auth_type].schema, draft.auth[draft.auth_type]),
    platform_config: configJson(catalog.platforms[platform].schema, draft.platformSettings[platform]),
    ...Object.fromEntries(Object.entries(optional).filter(([, value]) => value !== undefined)),
  };
}
