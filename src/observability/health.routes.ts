import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import Type from "typebox";
import type { Database } from "../db/database.js";
import { AppError } from "../errors.js";
import { errorResponses } from "../http/openapi.js";

const tags = ["Health"];

/** Liveness (the process answers) and readiness (it can reach its database). */
export function healthRoutes(database: Database): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get(
      "/health",
      {
        schema: {
          summary: "Liveness",
          tags,
          response: { 200: Type.Object({ status: Type.Literal("ok") }) },
        },
      },
      async () => ({ status: "ok" as const }),
    );

    app.get(
      "/ready",
      {
        schema: {
          summary: "Readiness: the database answers",
          tags,
          response: {
            200: Type.Object({
              status: Type.Literal("ready"),
              checks: Type.Object({ database: Type.Literal("ok") }),
              database: Type.String({ description: "embedded or postgres" }),
            }),
            ...errorResponses(503),
          },
        },
      },
      async (request) => {
        try {
          await database.ping();
        } catch (error) {
          request.log.warn({ err: error }, "readiness check failed: database unreachable");
          throw new AppError("SERVICE_UNAVAILABLE", "Database unreachable", {
            checks: { database: "failed" },
          });
        }
        return { status: "ready" as const, checks: { database: "ok" as const }, database: database.kind };
      },
    );
  };
}
