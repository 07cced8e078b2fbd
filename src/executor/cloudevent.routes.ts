import type { FastifyPluginAsync } from "fastify";
import { targetOrganization } from "../auth/access-control.js";
import { API_SECURITY } from "../http/openapi.js";
import type { Executor } from "./executor.js";
import { jobFromHttp } from "./job-event.js";

/**
 * POST /: a CloudEvent (binary `ce-*` headers or structured JSON) carrying a
 * JobExecutionEvent, run synchronously — 200 with the `agent.status.completed` event,
 * 503 with the `agent.status.failed` one, 400 when it is not a valid job.
 */
export function cloudEventRoutes(executor: Executor): FastifyPluginAsync {
  return async (app) => {
    // The body is read raw: CloudEvents parses it itself, whatever its content type.
    app.removeAllContentTypeParsers();
    app.addContentTypeParser("*", { parseAs: "buffer" }, (_request, body, done) => done(null, body));
    app.post(
      "/",
      {
        config: { permission: "jobs:submit" },
        schema: {
          summary: "Run a job CloudEvent synchronously",
          tags: ["Jobs"],
          security: API_SECURITY,
        },
      },
      async (request, reply) => {
        const incoming = jobFromHttp(
          request.headers,
          (request.body as Buffer | undefined) ?? Buffer.alloc(0),
        );
        // Another organization than the caller's own: platform admins only (403 otherwise).
        incoming.job.organization_id = targetOrganization(
          request,
          incoming.job.organization_id,
          "jobs:submit",
        );
        const { ok, event } = await executor.runNow(incoming);
        return reply
          .status(ok ? 200 : 503)
          .header("content-type", "application/cloudevents+json; charset=utf-8")
          .send(Buffer.from(event));
      },
    );
  };
}
