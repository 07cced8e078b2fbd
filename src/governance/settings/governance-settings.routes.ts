import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import Type from "typebox";
import { BudgetConfig, RateLimitConfig } from "../../agents/governance-config.js";
import { requestContext } from "../../auth/access-control.js";
import { API_SECURITY, errorResponses } from "../../http/openapi.js";
import type { GovernanceSettingsService } from "./governance-settings.service.js";

const tags = ["Governance"];

const Strategy = Type.Enum(["deny_overrides", "allow_overrides", "first_match"], {
  description: "How matching policies combine (default deny_overrides)",
});

const Settings = Type.Object({
  policy_combining: Strategy,
  rate_limit_defaults: RateLimitConfig,
  budget_config: BudgetConfig,
});

const SettingsPatch = Type.Object(
  {
    policy_combining: Type.Optional(Strategy),
    rate_limit_defaults: Type.Optional(RateLimitConfig),
    budget_config: Type.Optional(BudgetConfig),
  },
  { additionalProperties: false },
);

export function governanceSettingsRoutes(settings: GovernanceSettingsService): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get(
      "/governance/settings",
      {
        config: { permission: "policies:manage" },
        schema: {
          summary: "The organization's policy combining strategy, default rate limits and budget",
          tags,
          security: API_SECURITY,
          response: { 200: Settings, ...errorResponses(401, 403) },
        },
      },
      async (request) => settings.get(request.principal.organizationId),
    );

    app.patch(
      "/governance/settings",
      {
        config: { permission: "policies:manage" },
        schema: {
          summary: "Change the organization's governance settings; each given part replaces the current one",
          tags,
          security: API_SECURITY,
          body: SettingsPatch,
          response: { 200: Settings, ...errorResponses(400, 401, 403) },
        },
      },
      async (request) =>
        settings.update(request.principal.organizationId, request.body, requestContext(request)),
    );
  };
}
