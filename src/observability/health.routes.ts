import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import Type from "typebox";
import { AppError } from "../errors.js";
import { errorResponses } from "../http/openapi.js";

const tags = ["Health"];

/** How long one dependency may take to answer before readiness counts it as failed. */
const CHECK_TIMEOUT_MS = 2_000;

/** A dependency readiness checks, by name (database, redis, nats): resolves when it answers. */
export type DependencyCheck = () => Promise<void>;

export interface ReadinessChecks {
  /** Without these the process can serve nothing: one not answering makes it unready. */
  required: Record<string, DependencyCheck>;
  /**
   * Without these it serves degraded — rate limits failing open or closed as configured,
   * job submissions refused — which beats taking every pod out of its Service at once:
   * reported, and the process stays ready.
   */
  degradable: Record<string, DependencyCheck>;
}

/**
 * Liveness (the process answers) and readiness (its required dependencies answer; the
 * others are reported).
 */
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
          summary: "Readiness: the process is not shutting down and its required dependencies answer",
          description:
            "503 when the database does not answer (a worker: or NATS). Redis, and NATS for an API process, are reported: when one does not answer the process stays ready, with status `degraded`.",
          tags,
          response: {
            200: Type.Object({
              status: Type.Union([Type.Literal("ready"), Type.Literal("degraded")]),
              checks: Type.Record(Type.String(), Type.Union([Type.Literal("ok"), Type.Literal("failed")]), {
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
        const { required, degradable } = options.checks;
        const results = await Promise.all(
          Object.entries({ ...required, ...degradable }).map(async ([name, check]) => {
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
        const checks = Object.fromEntries(results);
        const missing = failed.filter((name) => name in required);
        if (missing.length > 0)
          throw new AppError("SERVICE_UNAVAILABLE", `Not ready: ${missing.join(", ")} unreachable`, {
            checks,
          });
        const status = failed.length > 0 ? ("degraded" as const) : ("ready" as const);
        return { status, checks, database: options.databaseKind };
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
