import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import Type from "typebox";
import { requestContext } from "../auth/access-control.js";
import { API_SECURITY, errorResponses } from "../http/openapi.js";
import { PageQuery, Paginated, pageRequest } from "../http/pagination.js";
import type { AgentConfigService } from "./agent-config.service.js";
import type { LifecycleEvents } from "./lifecycle-events.js";
import { AgentIdParams } from "./managed-agent.schemas.js";

const tags = ["Managed agents"];
const ConfigObject = Type.Record(Type.String(), Type.Unknown(), { description: "The config object itself" });
const Source = Type.Enum(["default", "environment", "stored", "override"]);

const EffectiveConfig = Type.Object({
  agent_id: Type.String(),
  version: Type.Integer({ description: "Stored version in force; 0 before the first PUT" }),
  config: ConfigObject,
  sources: Type.Record(Type.String(), Source),
});

const ConfigVersion = Type.Object({
  version: Type.Integer(),
  config: ConfigObject,
  author: Type.Object({ type: Type.String(), id: Type.String() }),
  created_at: Type.String({ format: "date-time" }),
  diff: Type.Object({
    added: ConfigObject,
    removed: Type.Array(Type.String()),
    changed: Type.Record(Type.String(), Type.Object({ from: Type.Unknown(), to: Type.Unknown() })),
  }),
});

const ConfigMessage = Type.Object({
  type: Type.Literal("config"),
  version: Type.Integer(),
  config: ConfigObject,
});

/** The longest a long-poll waits before answering 204. */
const MAX_WAIT_S = 60;

/** A managed agent's configuration: effective view, versions, overrides, and the long-poll push. */
export function agentConfigRoutes(
  configs: AgentConfigService,
  events: LifecycleEvents,
): FastifyPluginAsyncTypebox {
  return async (app) => {
    // Long-polls waiting now; shutting down answers them at once rather than waiting them out.
    const waiting = new Set<() => void>();
    let closing = false;
    app.addHook("preClose", async () => {
      closing = true;
      for (const wake of waiting) wake();
    });

    app.get(
      "/agents/:id/config",
      {
        config: { permission: "agents:read" },
        schema: {
          summary: "The effective config and where each key came from",
          description: "defaults < environment (STEWARD_AGENT_<NAME>_<KEY>) < stored < runtime overrides.",
          tags,
          security: API_SECURITY,
          params: AgentIdParams,
          response: { 200: EffectiveConfig, ...errorResponses(401, 403, 404) },
        },
      },
      async (request) => configs.effective(request.principal.organizationId, request.params.id),
    );

    app.put(
      "/agents/:id/config",
      {
        config: { permission: "agents:update" },
        schema: {
          summary: "Store a new config version and push it to the agent",
          description:
            "The body is the config object. It is validated against the agent's config schema, stored as a new version with its author, and sent to the running agent on agents.{id}.control (NATS), to long-polls and to WebSocket watchers. Rolling back is a PUT of an old version's config.",
          tags,
          security: API_SECURITY,
          params: AgentIdParams,
          body: ConfigObject,
          response: { 200: EffectiveConfig, ...errorResponses(400, 401, 403, 404) },
        },
      },
      async (request) =>
        configs.put(
          request.principal.organizationId,
          request.params.id,
          request.body,
          requestContext(request),
        ),
    );

    app.put(
      "/agents/:id/config/overrides",
      {
        config: { permission: "agents:update" },
        schema: {
          summary: "Replace the runtime overrides (above every other layer; `{}` clears them)",
          tags,
          security: API_SECURITY,
          params: AgentIdParams,
          body: ConfigObject,
          response: { 200: EffectiveConfig, ...errorResponses(400, 401, 403, 404) },
        },
      },
      async (request) =>
        configs.setOverrides(
          request.principal.organizationId,
          request.params.id,
          request.body,
          requestContext(request),
        ),
    );

    app.get(
      "/agents/:id/config/history",
      {
        config: { permission: "agents:read" },
        schema: {
          summary: "Stored config versions, newest first, with diffs",
          tags,
          security: API_SECURITY,
          params: AgentIdParams,
          querystring: Type.Object(PageQuery),
          response: { 200: Paginated(ConfigVersion), ...errorResponses(401, 403, 404) },
        },
      },
      async (request) =>
        configs.history(request.principal.organizationId, request.params.id, pageRequest(request.query)),
    );

    app.get(
      "/agents/:id/control",
      {
        config: { permission: "agents:read" },
        schema: {
          summary: "Long-poll for a config newer than `after` (for agents without NATS)",
          description:
            "Answers 200 with the config message at once when the stored version is newer than `after`, else as soon as the config changes (a new version or new overrides), or 204 when `wait_s` ran out.",
          tags,
          security: API_SECURITY,
          params: AgentIdParams,
          querystring: Type.Object({
            after: Type.Optional(Type.Integer({ minimum: 0, default: 0 })),
            wait_s: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_WAIT_S, default: 25 })),
          }),
          response: { 200: ConfigMessage, 204: Type.Null(), ...errorResponses(400, 401, 403, 404) },
        },
      },
      async (request, reply) => {
        const { organizationId } = request.principal;
        const { id } = request.params;
        const after = request.query.after ?? 0;
        const pending = () => configs.pendingMessage(organizationId, id, after);
        // Subscribe before the first read, so a change between the two is not missed.
        let wake: () => void = () => {};
        const changed = new Promise<void>((resolve) => {
          wake = resolve;
        });
        // A change while waiting is sent even without a new version: overrides have none.
        let changedWhileWaiting = false;
        const unsubscribe = events.subscribe(organizationId, (event) => {
          if (event.type !== "config" || event.agent_id !== id) return;
          changedWhileWaiting = true;
          wake();
        });
        const timer = setTimeout(wake, (request.query.wait_s ?? 25) * 1000);
        // A client that hangs up stops the wait (the response closes before it finishes).
        reply.raw.once("close", wake);
        waiting.add(wake);
        if (closing) wake();
        try {
          const now = await pending();
          if (now) return now;
          await changed;
          if (changedWhileWaiting) return await configs.currentMessage(organizationId, id);
          return reply.status(204).send(null);
        } finally {
          clearTimeout(timer);
          unsubscribe();
          waiting.delete(wake);
        }
      },
    );
  };
}
