import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import Type from "typebox";
import { AppError } from "../errors.js";
import { errorResponses } from "../http/openapi.js";

const tags = ["Health"];

/** How long one dependency may take to answer before readiness counts it as failed. */
const CHECK_TIMEOUT_MS = 2_000;

/** Each dependency readiness checks, by name (database, redis, nats): resolves when it answers. */
export type ReadinessChecks = Record<string, () => Promise<void>>;

/** Liveness (the process answers) and readiness (every dependency it is configured with answers). */
export function healthRoutes(options: {
  checks: ReadinessChecks;
  databaseKind: string;
  /** True from the moment shutdown begins: readiness goes false before anything stops. */
  shuttingDown: () => boolean;
}): FastifyPluginAsyncTypebox {
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
          summary:
            "Readiness: the database, and Redis and NATS when configured, answer, and the process is not shutting down",
          tags,
          response: {
            200: Type.Object({
              status: Type.Literal("ready"),
              checks: Type.Record(Type.String(), Type.Literal("ok"), {
                description: "database, and redis and nats when configured",
              }),
              database: Type.String({ description: "embedded or postgres" }),
            }),
            ...errorResponses(503),
          },
        },
      },
      async (request) => {
        if (options.shuttingDown()) throw new AppError("SERVICE_UNAVAILABLE", "Not ready: shutting down");
        const results = await Promise.all(
          Object.entries(options.checks).map(async ([name, check]) => {
            try {
              await withTimeout(check());
              return [name, "ok"] as const;
            } catch (error) {
              request.log.warn({ err: error, dependency: name }, `readiness check failed: ${name}`);
              return [name, "failed"] as const;
            }
          }),
        );
        const failed = results.filter(([, result]) => result === "failed").map(([name]) => name);
        if (failed.length > 0)
          throw new AppError("SERVICE_UNAVAILABLE", `Not ready: ${failed.join(", ")} unreachable`, {
            checks: Object.fromEntries(results),
          });
        const checks = Object.fromEntries(results.map(([name]) => [name, "ok" as const]));
        return { status: "ready" as const, checks, database: options.databaseKind };
      },
    );
  };
}

/** A dependency that hangs (a frozen Redis, a half-open socket) fails the check instead of the probe. */
async function withTimeout(check: Promise<void>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      check,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)),
          CHECK_TIMEOUT_MS,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
