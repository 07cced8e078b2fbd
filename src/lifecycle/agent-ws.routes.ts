import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import type {} from "@fastify/websocket";
import { API_SECURITY } from "../http/openapi.js";
import type { LifecycleEvents } from "./lifecycle-events.js";

/** Keeps idle connections open through proxies that close silent ones. */
const PING_INTERVAL_MS = 25_000;

/**
 * GET /api/v1/agents/ws: every status change, heartbeat, health change, alert, config
 * change and process event of the caller's organization, as JSON messages.
 */
export function agentWebSocketRoutes(events: LifecycleEvents): FastifyPluginAsyncTypebox {
  return async (app) => {
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
        const unsubscribe = events.subscribe(request.principal.organizationId, (event) => {
          if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(event));
        });
        const ping = setInterval(() => socket.ping(), PING_INTERVAL_MS);
        socket.on("close", () => {
          clearInterval(ping);
          unsubscribe();
        });
        socket.send(JSON.stringify({ type: "ready", organization_id: request.principal.organizationId }));
      },
    );
  };
}
