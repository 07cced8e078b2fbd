import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import type { FastifyReply, FastifyRequest } from "fastify";
import Type from "typebox";
import { AppError, NotFoundError } from "../errors.js";
import { API_SECURITY, errorResponses } from "../http/openapi.js";
import { readCallerIdentity } from "../invocation/caller-identity.js";
import type { InvocationService } from "../invocation/invocation.service.js";
import {
  type A2aAnswer,
  type A2aMessage,
  type A2aTask,
  answerForA2a,
  refusalFor,
  taskFor,
} from "./a2a-server-answer.js";
import { A2A_SYSTEM, readA2aMessage } from "./a2a-server-message.js";
import {
  invalidParams,
  RPC_ERRORS,
  type RpcError,
  type RpcId,
  type RpcResponse,
  readRpcRequest,
  rpcError,
  rpcResult,
  UnparsableBody,
} from "./a2a-server-rpc.js";
import type { PublishedAgents } from "./published-agents.js";
import { publishedCard } from "./published-card.js";

/**
 * Steward's published A2A endpoints (protocol v0.3, JSON-RPC): a governed agent's card,
 * and `message/send`, `message/stream`, `tasks/get`, `tasks/cancel` running the governed
 * invoke. Registered under /a2a behind the same access control as the API.
 */

export interface A2aServerDependencies {
  published: PublishedAgents;
  invocations: InvocationService;
  publicUrl: string;
}

const tags = ["A2A"];
const AgentParams = Type.Object({ agent_id: Type.String({ minLength: 1, maxLength: 64 }) });
const MAX_TASK_ID = 200;

type Outcome = { status: number; headers?: Record<string, string>; body: RpcResponse } | A2aStream;

/** A `message/stream` answer: the events to write as server-sent events, then the stream ends. */
interface A2aStream {
  stream: unknown[];
  headers: Record<string, string>;
  id: RpcId;
}

export function a2aServerRoutes(deps: A2aServerDependencies): FastifyPluginAsyncTypebox {
  return async (app) => {
    // JSON-RPC answers bad JSON with -32700, not the API's 400 envelope.
    app.removeContentTypeParser("application/json");
    app.addContentTypeParser("application/json", { parseAs: "string" }, (_request, body, done) => {
      try {
        done(null, JSON.parse(body as string));
      } catch {
        done(null, new UnparsableBody());
      }
    });

    app.get(
      "/:agent_id/.well-known/agent-card.json",
      {
        config: { permission: "external_agents:read" },
        schema: {
          summary: "The A2A Agent Card of a published agent, pointing at Steward",
          tags,
          security: API_SECURITY,
          params: AgentParams,
          response: {
            200: Type.Unknown({ description: "An A2A v0.3 AgentCard" }),
            ...errorResponses(400, 401, 403, 404),
          },
        },
      },
      async (request) => {
        const agent = await deps.published.find(request.principal.organizationId, request.params.agent_id);
        if (!agent) throw new NotFoundError("published agent", request.params.agent_id);
        return publishedCard(agent, deps.publicUrl);
      },
    );

    app.post(
      "/:agent_id",
      {
        config: { permission: "external_agents:invoke", passesAnyText: true },
        schema: {
          summary: "A2A JSON-RPC: message/send, message/stream, tasks/get, tasks/cancel, governed",
          description:
            "Every message runs the governed invoke; refusals are JSON-RPC errors (codes in docs/a2a.md).",
          tags,
          security: API_SECURITY,
          params: AgentParams,
        },
      },
      async (request, reply) => {
        const outcome = await handle(deps, request as FastifyRequest<{ Params: { agent_id: string } }>);
        if ("stream" in outcome) return writeStream(reply, outcome);
        return reply
          .status(outcome.status)
          .headers(outcome.headers ?? {})
          .send(outcome.body);
      },
    );
  };
}

async function handle(
  deps: A2aServerDependencies,
  request: FastifyRequest<{ Params: { agent_id: string } }>,
): Promise<Outcome> {
  const rpc = readRpcRequest(request.body);
  const { id } = rpc;
  const reject = (error: RpcError) => ({ status: 200, body: rpcError(id, error) });
  const organizationId = request.principal.organizationId;
  const agentId = request.params.agent_id;
  const agent = await deps.published.find(organizationId, agentId);
  if (!agent) {
    return {
      status: 404,
      body: rpcError(id, {
        code: RPC_ERRORS.NOT_FOUND,
        message: `published agent ${agentId} not found`,
        data: { reason: "not_found" },
      }),
    };
  }
  if ("error" in rpc) return reject(rpc.error);

  switch (rpc.method) {
    case "message/send":
    case "message/stream": {
      const answer = await invoke(deps, request, rpc.params);
      if ("code" in answer) return reject(answer);
      if ("error" in answer)
        return { status: answer.httpStatus, headers: answer.headers, body: rpcError(id, answer.error) };
      if (rpc.method === "message/stream")
        return { stream: streamEvents(answer.result), headers: answer.headers, id };
      return { status: 200, headers: answer.headers, body: rpcResult(id, answer.result) };
    }
    case "tasks/get":
    case "tasks/cancel": {
      const taskId = rpc.params.id;
      if (typeof taskId !== "string" || taskId.length === 0 || taskId.length > MAX_TASK_ID)
        return reject(invalidParams("params.id", `must be a string of 1 to ${MAX_TASK_ID} characters`));
      const row = await deps.published.task(organizationId, agentId, request.principal.id, taskId);
      if (!row)
        return reject({ code: RPC_ERRORS.TASK_NOT_FOUND, message: "Task not found", data: { taskId } });
      if (rpc.method === "tasks/get") return { status: 200, body: rpcResult(id, taskFor(row)) };
      // A held call is decided by its approvers in Steward; any other has already ended.
      return reject({
        code: RPC_ERRORS.TASK_NOT_CANCELABLE,
        message: "Task cannot be canceled: a call waiting for approval is rejected by an approver in Steward",
        data: { taskId },
      });
    }
    default:
      return reject({ code: RPC_ERRORS.METHOD_NOT_FOUND, message: `Method not found: ${rpc.method}` });
  }
}

/** Runs the governed invoke for a message; a JSON-RPC error when the message itself is unusable. */
async function invoke(
  deps: A2aServerDependencies,
  request: FastifyRequest<{ Params: { agent_id: string } }>,
  params: Record<string, unknown>,
): Promise<A2aAnswer | RpcError> {
  const message = readA2aMessage(params);
  if ("code" in message) return message;
  const headers = readCallerIdentity(request.headers);
  const [problem] = headers.errors;
  if (problem) return invalidParams(problem.field, problem.message);
  const traceparent = request.headers.traceparent;
  try {
    const row = await deps.invocations.invoke({
      principal: request.principal,
      agentId: request.params.agent_id,
      body: message.body,
      // The message's metadata over the headers; the system is always A2A, for lineage and policies.
      identity: { ...headers.identity, ...message.identity, system: A2A_SYSTEM },
      traceparent: typeof traceparent === "string" ? traceparent : undefined,
      idempotencyKey: message.idempotencyKey,
      ip: request.ip,
      userAgent: request.headers["user-agent"],
      requestId: String(request.id),
    });
    return answerForA2a(row);
  } catch (error) {
    if (error instanceof AppError) return refusalFor(error);
    throw error;
  }
}

/**
 * The governed invoke has finished (or is held) by the time it answers: a Message is the
 * whole stream; a held call's Task is followed by its `input-required` status, final.
 */
function streamEvents(result: A2aMessage | A2aTask): unknown[] {
  if (result.kind === "message") return [result];
  const task = result;
  return [
    task,
    { kind: "status-update", taskId: task.id, contextId: task.contextId, status: task.status, final: true },
  ];
}

/** Server-sent events, each a JSON-RPC response echoing the request's id. */
function writeStream(reply: FastifyReply, outcome: A2aStream): void {
  reply.hijack();
  // Hijacked, the reply's own headers (x-request-id) are not sent unless copied.
  for (const [name, value] of Object.entries(reply.getHeaders()))
    if (value !== undefined) reply.raw.setHeader(name, value);
  reply.raw.writeHead(200, {
    ...outcome.headers,
    "content-type": "text/event-stream",
    "cache-control": "no-cache",
  });
  for (const event of outcome.stream)
    reply.raw.write(`data: ${JSON.stringify(rpcResult(outcome.id, event))}\n\n`);
  reply.raw.end();
}
