import { randomBytes } from "node:crypto";
import type { Dispatcher } from "undici";
import { request } from "undici";
import type { Principal } from "../auth/permissions.js";
import { AppError } from "../errors.js";
import type { InvocationService } from "../invocation/invocation.service.js";
import { answerFor } from "../invocation/invocation-response.js";
import { HttpNodeStatusError } from "./final-failure.js";
import type { NodeRunners } from "./graph-compiler.js";
import type { ExternalAgentNode, HttpNode, LlmNode } from "./graph-definition.js";
import { evaluateExpression, type GraphState } from "./graph-expression.js";
import { type ChatMessage, streamChatCompletion } from "./llm-client.js";

export interface LlmSettings {
  /** OPENAI_BASE_URL: where `llm` nodes go unless they name another allowed base URL. */
  baseUrl: string;
  /** Base URLs a node may name (the default is always allowed): keys never go anywhere else. */
  allowedBaseUrls: string[];
  /** Keys a node may name by variable (OPENAI_API_KEY, ANTHROPIC_API_KEY): the values stay here. */
  keys: Record<string, string>;
  defaultKeyName: string;
  timeoutMs: number;
}

export interface NodeRunnerDependencies {
  invocations: InvocationService;
  /** The SSRF-guarded dispatcher: `http` nodes reach only what the guard allows. */
  dispatcher: Dispatcher;
  llm: LlmSettings;
  httpTimeoutMs: number;
  maxResponseBytes: number;
}

/** A job acts for its organization with a developer's rights: it may invoke agents, nothing more. */
function jobPrincipal(jobId: string, organizationId: string): Principal {
  return { type: "job", id: jobId, organizationId, roles: ["developer"], team: null, platformAdmin: false };
}

async function evaluate(expression: string | undefined, state: GraphState, fallback: unknown) {
  return expression === undefined ? fallback : evaluateExpression(expression, state);
}

/** The three node kinds that reach outside: the governed gateway, SSRF-safe HTTP and the LLM endpoint. */
export function createNodeRunners(deps: NodeRunnerDependencies): NodeRunners {
  return {
    async external_agent(node: ExternalAgentNode, state, ctx) {
      const payload = await evaluate(node.input, state, state.input);
      ctx.emit("agent_call", { node: node.id, agent_id: node.agent_id });
      const row = await deps.invocations.invoke({
        principal: jobPrincipal(ctx.jobId, ctx.organizationId),
        agentId: node.agent_id,
        body: { input: typeof payload === "string" ? payload : JSON.stringify(payload ?? null) },
        identity: { system: "steward-executor", sessionId: ctx.jobId, traceId: ctx.traceId },
        traceparent: `00-${ctx.traceId}-${randomBytes(8).toString("hex")}-01`,
        // Each visit of the node calls the agent once, however often the job is resumed.
        idempotencyKey: `job:${ctx.jobId}:${node.id}:${ctx.step}`,
        requestId: `job_${ctx.jobId}`,
      });
      const answer = answerFor(row);
      if ("error" in answer) throw answer.error;
      const body = answer.body as { output?: unknown; invocation_id?: string; status?: string };
      ctx.emit("agent_result", { node: node.id, invocation_id: body.invocation_id, status: body.status });
      if (body.status !== "success")
        throw new AppError(
          "CONFLICT",
          `agent ${node.agent_id} answered ${body.status ?? "without a result"}`,
        );
      return body.output;
    },

    async http(node: HttpNode, state, ctx) {
      const body = await evaluate(node.body, state, undefined);
      ctx.emit("http_call", { node: node.id, method: node.method ?? "GET", url: node.url });
      const response = await request(node.url, {
        method: node.method ?? "GET",
        headers: { ...(body === undefined ? {} : { "content-type": "application/json" }), ...node.headers },
        body: body === undefined ? undefined : JSON.stringify(body),
        dispatcher: deps.dispatcher,
        headersTimeout: deps.httpTimeoutMs,
        bodyTimeout: deps.httpTimeoutMs,
        signal: ctx.signal,
      });
      const text = await readCapped(response.body, deps.maxResponseBytes);
      if (response.statusCode >= 400)
        throw new HttpNodeStatusError(
          `${node.method ?? "GET"} ${node.url} answered ${response.statusCode}`,
          response.statusCode,
        );
      const json = String(response.headers["content-type"] ?? "").includes("json");
      return { status: response.statusCode, body: json && text ? JSON.parse(text) : text };
    },

    async llm(node: LlmNode, state, ctx) {
      const baseUrl = (node.base_url ?? deps.llm.baseUrl).replace(/\/+$/, "");
      if (baseUrl !== deps.llm.baseUrl.replace(/\/+$/, "") && !deps.llm.allowedBaseUrls.includes(baseUrl))
        throw new Error(`llm node ${node.id}: base_url ${baseUrl} is not among the allowed LLM endpoints`);
      const keyName = node.api_key_env ?? deps.llm.defaultKeyName;
      if (node.api_key_env !== undefined && !(keyName in deps.llm.keys))
        throw new Error(`llm node ${node.id}: ${keyName} is not a configured LLM key`);
      const prompt = await evaluate(node.prompt, state, undefined);
      const messages: ChatMessage[] = [
        ...(node.system ? [{ role: "system" as const, content: node.system }] : []),
        ...(Array.isArray(prompt)
          ? (prompt as ChatMessage[])
          : [{ role: "user" as const, content: String(prompt) }]),
      ];
      const result = await streamChatCompletion(
        {
          baseUrl,
          apiKey: deps.llm.keys[keyName],
          model: node.model,
          messages,
          temperature: node.temperature,
          maxTokens: node.max_tokens,
          signal: ctx.signal,
          timeoutMs: deps.llm.timeoutMs,
        },
        (token) => ctx.emit("token", { node: node.id, token }),
      );
      return { content: result.content, finish_reason: result.finishReason, usage: result.usage ?? null };
    },
  };
}

async function readCapped(body: AsyncIterable<Buffer>, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > limit) throw new Error(`response larger than ${limit} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}
