import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import { type TypeBoxTypeProvider, TypeBoxValidatorCompiler } from "@fastify/type-provider-typebox";
import websocket from "@fastify/websocket";
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from "fastify";
import type { Logger } from "pino";
import { pooledRandomBytes } from "../crypto/random-pool.js";
import { AppError, ValidationError } from "../errors.js";
import { registerDateTimeFormat } from "./date-time-format.js";
import { MAX_PATH_PARAMETER_LENGTH, registerErrorHandlers, sendFrameworkError } from "./error-handler.js";
import { unacceptableJson } from "./input-limits.js";

const REQUEST_ID_PATTERN = /^[\w.:-]{1,128}$/;

/**
 * Logs each request once, when it completes, with the request in that line. Fastify's default also
 * logs its arrival: twice the log volume on the hot path for nothing a reader needs.
 */
class OneLinePerRequest extends LogController {
  override incomingRequest(): void {}

  override requestCompleted(
    error: Error | null | undefined,
    request: FastifyRequest,
    reply: FastifyReply,
  ): void {
    const line = { req: request, res: reply, responseTime: reply.elapsedTime };
    if (error) request.log.error({ ...line, err: error }, "request errored");
    else request.log.info(line, "request completed");
  }
}

export interface HttpServerOptions {
  logger: Logger;
  bodyLimitBytes: number;
  version: string;
  /** Whether it serves the API, with its description (/docs, /openapi.json) and websockets. */
  api: boolean;
}

/** The Fastify instance with everything shared by all routes: ids, errors, validation, OpenAPI. */
export async function createHttpServer(options: HttpServerOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: options.logger as FastifyBaseLogger,
    logController: new OneLinePerRequest(),
    bodyLimit: options.bodyLimitBytes,
    routerOptions: { maxParamLength: MAX_PATH_PARAMETER_LENGTH },
    frameworkErrors: sendFrameworkError,
    requestIdHeader: false,
    // A caller's own request id is kept so logs can be joined across systems.
    genReqId: (request) => {
      const given = request.headers["x-request-id"];
      return typeof given === "string" && REQUEST_ID_PATTERN.test(given)
        ? given
        : `req_${pooledRandomBytes(12).toString("base64url")}`;
    },
  }).withTypeProvider<TypeBoxTypeProvider>();
  registerDateTimeFormat();
  app.setValidatorCompiler(TypeBoxValidatorCompiler);
  // The API takes JSON bodies only: plain text is refused with 415, as every other type
  // is, rather than reaching validation as a string.
  app.removeContentTypeParser("text/plain");

  app.addHook("onRequest", async (request, reply) => {
    reply.header("x-request-id", request.id);
    // A NUL reaches no query in one piece: PostgreSQL refuses it in any text.
    if (/%00/i.test(request.url)) throw new AppError("BAD_REQUEST", "The URL must not contain %00 (NUL)");
  });
  // Before validation, which walks the body too: deep nesting would exhaust the stack.
  app.addHook("preValidation", async (request) => {
    const problem = unacceptableJson(request.body, request.routeOptions.config.passesAnyText === true);
    if (problem) throw new ValidationError([problem]);
  });
  // Once closing, answers end their connection: a keep-alive socket left open would hold
  // close() until the keep-alive timeout, long after the last request finished.
  let closing = false;
  app.addHook("preClose", async () => {
    closing = true;
  });
  app.addHook("onSend", async (_request, reply) => {
    if (closing) reply.header("connection", "close");
  });
  registerErrorHandlers(app);
  if (!options.api) return app;

  await app.register(swagger, {
    openapi: {
      openapi: "3.1.0",
      info: {
        title: "Steward API",
        version: options.version,
        description: "Registry and governed gateway for external AI agents.",
      },
      components: {
        securitySchemes: {
          bearerAuth: { type: "http", scheme: "bearer", description: "An API key (sk_live_…) or a JWT" },
          apiKeyHeader: { type: "apiKey", in: "header", name: "X-API-Key" },
        },
      },
    },
  });
  await app.register(swaggerUi, { routePrefix: "/docs" });
  await app.register(websocket, { options: { maxPayload: 64 * 1024 } });
  app.get("/openapi.json", { schema: { hide: true } }, async () => app.swagger());
  return app;
}
