import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import type {} from "@fastify/websocket";
import Type from "typebox";
import { GuardedSocket } from "../auth/guarded-socket.js";
import { API_SECURITY } from "../http/openapi.js";
import type { AgentConfigService, ConfigMessage } from "./agent-config.service.js";
import type { LifecycleEvents } from "./lifecycle-events.js";
import { AgentIdParams } from "./managed-agent.schemas.js";

/** Keeps idle connections open through proxies that close silent ones. */
const PING_INTERVAL_MS = 25_000;

/**
 * GET /api/v1/agents/ws: every status change, heartbeat, health change, alert, config
 * change and process event of the caller's organization, as JSON messages. And
 * GET /api/v1/agents/{id}/control/ws: one agent's config pushes, for agents without NATS.
 */
export function agentWebSocketRoutes(
  events: LifecycleEvents,
  configs: AgentConfigService,
): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get(
      "/agents/:id/control/ws",
      {
        websocket: true,
        config: { permission: "agents:read", queryCredential: true },
        schema: {
          summary: "The agent's config pushes (WebSocket), for agents without NATS",
          description:
            'Sends `{type: "config", version, config}` at once when the stored version is newer than `after`, then at every change, as on agents.{id}.control.',
          tags: ["Managed agents"],
          security: API_SECURITY,
          params: AgentIdParams,
          querystring: Type.Object({ after: Type.Optional(Type.Integer({ minimum: 0, default: 0 })) }),
        },
        // Before the upgrade: another organization's or an unknown agent is a 404, not a socket.
        preHandler: (request) => configs.requireAgent(request.principal.organizationId, request.params.id),
      },
      (socket, request) => {
        const { organizationId } = request.principal;
        const { id } = request.params;
        const guarded = new GuardedSocket(socket, request, { everyMessage: true });
        // Sends run one at a time, in the order of the changes.
        let queue = Promise.resolve();
        const send = (message: () => Promise<ConfigMessage | undefined>) => {
          queue = queue
            .then(async () => {
              const next = await message();
              // The config can hold secrets: it goes out only while the credential stands.
              if (next) await guarded.send(JSON.stringify(next));
            })
            .catch((error: unknown) => {
              request.log.warn({ err: error, agent_id: id }, "config push over WebSocket failed");
              socket.close(1011, "config unavailable");
            });
        };
        const unsubscribe = events.subscribe(organizationId, (event) => {
          if (event.type === "config" && event.agent_id === id)
            send(() => configs.currentMessage(organizationId, id));
        });
        const ping = setInterval(() => socket.ping(), PING_INTERVAL_MS);
        socket.on("close", () => {
          clearInterval(ping);
          unsubscribe();
        });
        send(() => configs.pendingMessage(organizationId, id, request.query.after ?? 0));
      },
    );

    app.get(
      "/agents/ws",
      {
        websocket: true,
        config: { permission: "agents:read", queryCredential: true },
        schema: {
          summary: "Live events of the organization's managed agents (WebSocket)",
          description:
            "Authenticate with the Authorization header or, from a browser, `?access_token=`. Each message is one JSON event: {type: status|heartbeat|health|alert|config|process, agent_id, at, …}.",
          tags: ["Managed agents"],
          security: API_SECURITY,
        },
      },
      (socket, request) => {
        const guarded = new GuardedSocket(socket, request);
        const unsubscribe = events.subscribe(request.principal.organizationId, (event) => {
          void guarded.send(JSON.stringify(event));
        });
        const ping = setInterval(() => socket.ping(), PING_INTERVAL_MS);
        socket.on("close", () => {
          clearInterval(ping);
          unsubscribe();
        });
        void guarded.send(
          JSON.stringify({ type: "ready", organization_id: request.principal.organizationId }),
        );
      },
    );
  };
}
