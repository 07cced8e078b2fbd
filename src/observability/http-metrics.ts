import type { FastifyInstance } from "fastify";
import type { Histogram } from "prom-client";

/** The route label of a request no route matched (a 404): its URL would give a series per path. */
const UNMATCHED_ROUTE = "unmatched";

/** Records how long each answered request took, under its route template (`/…/:id/invoke`). */
export function registerHttpMetrics(
  server: FastifyInstance,
  duration: Histogram<"method" | "route" | "status_code">,
): void {
  server.addHook("onResponse", async (request, reply) => {
    duration.observe(
      {
        method: request.method,
        // is404 also covers a wildcard route (the dashboard's) that passed the request on to the 404 handler.
        route: request.is404 ? UNMATCHED_ROUTE : (request.routeOptions.url ?? UNMATCHED_ROUTE),
        status_code: String(reply.statusCode),
      },
      reply.elapsedTime / 1000,
    );
  });
}
