import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import type { Registry } from "prom-client";

/** Prometheus exposition at /metrics, outside /api/v1 like the health checks. */
export function metricsRoutes(registry: Registry): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get(
      "/metrics",
      { schema: { summary: "Prometheus metrics", tags: ["Health"] } },
      async (_request, reply) => reply.type(registry.contentType).send(await registry.metrics()),
    );
  };
}
