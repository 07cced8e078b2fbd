import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import Type from "typebox";
import type { ExternalAgentService } from "../agents/agent.service.js";
import { API_SECURITY, errorResponses } from "../http/openapi.js";
import {
  ACTIVITY_BUCKETS,
  DECISIONS,
  type GovernanceActivity,
  MAX_ACTIVITY_BUCKETS,
  resolveActivityRange,
} from "./activity.js";

const ActivityQuery = Type.Object(
  {
    agent_id: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 64,
        description: "Only this agent's calls (an agent of the caller's organization, else 404)",
      }),
    ),
    from: Type.Optional(
      Type.String({
        format: "date-time",
        description:
          "Start of the range, rounded down to a whole bucket (default: 24 hours before `to`; 60 minutes with bucket=minute)",
      }),
    ),
    to: Type.Optional(
      Type.String({
        format: "date-time",
        description: "End of the range, exclusive, rounded up to a whole bucket (default: now)",
      }),
    ),
    bucket: Type.Optional(
      Type.Enum(ACTIVITY_BUCKETS, { description: "Bucket length, in UTC (default hour)" }),
    ),
  },
  { additionalProperties: false },
);

const Count = Type.Integer({ minimum: 0 });

const ActivityBucketSchema = Type.Object({
  start: Type.String({ format: "date-time", description: "Start of the bucket (UTC)" }),
  decisions: Type.Object(
    Object.fromEntries(DECISIONS.map((decision) => [decision, Count])) as Record<
      (typeof DECISIONS)[number],
      typeof Count
    >,
  ),
  spend_usd: Type.Number({ description: "Sum of the calls' recorded cost" }),
  invocations: Type.Integer({ minimum: 0, description: "Calls in the bucket, whatever their outcome" }),
});

const Activity = Type.Object({
  from: Type.String({ format: "date-time", description: "Start of the first bucket" }),
  to: Type.String({ format: "date-time", description: "End of the last bucket (exclusive)" }),
  bucket: Type.Enum(ACTIVITY_BUCKETS),
  series: Type.Array(ActivityBucketSchema, { description: "Every bucket of the range, oldest first" }),
});

export interface GovernanceActivityDependencies {
  activity: GovernanceActivity;
  agents: ExternalAgentService;
  clock?: () => Date;
}

/** Governance decisions and spend over time, for charts. */
export function governanceActivityRoutes(deps: GovernanceActivityDependencies): FastifyPluginAsyncTypebox {
  const clock = deps.clock ?? (() => new Date());
  return async (app) => {
    app.get(
      "/governance/activity",
      {
        config: { permission: "external_agents:read" },
        schema: {
          summary: "Governance decisions, spend and calls of the organization per time bucket",
          description: [
            "Counts the organization's invocations (or one agent's) by the bucket of their arrival (`created_at`), with every bucket of the range present, zeros included.",
            "Each call counts once, by its current status: `success`, `failure`, `timeout`, `error` (Steward could not finish the call, including a refusal because the rate limiter was unreachable in closed fail mode) and `running` count as `allowed`;",
            "`rate_limited`, `budget_exceeded` and `policy_denied` as themselves (`policy_denied` includes an approved call that policy refused when it resumed);",
            "`pending_approval`, `approval_rejected` and `approval_expired` (held for approval) as `pending_approval`. An approved call that then ran counts as `allowed`.",
            `spend_usd is the sum of the calls' recorded cost. The range is widened to whole UTC buckets and may hold at most ${MAX_ACTIVITY_BUCKETS} of them.`,
          ].join(" "),
          tags: ["Governance"],
          security: API_SECURITY,
          querystring: ActivityQuery,
          response: { 200: Activity, ...errorResponses(400, 401, 403, 404) },
        },
      },
      async (request) => {
        const organizationId = request.principal.organizationId;
        const { agent_id: agentId, from, to, bucket } = request.query;
        const range = resolveActivityRange({ from, to, bucket }, clock());
        if (agentId !== undefined) await deps.agents.get(organizationId, agentId);
        const series = await deps.activity.series(organizationId, range, agentId);
        return {
          from: range.from.toISOString(),
          to: range.to.toISOString(),
          bucket: range.bucket,
          series: series.map((point) => ({
            start: point.start.toISOString(),
            decisions: point.decisions,
            spend_usd: point.spendUsd,
            invocations: point.invocations,
          })),
        };
      },
    );
  };
}
