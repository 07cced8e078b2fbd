import { randomUUID } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { type AgentCard, type Message, type Part, Role, TaskState, type TaskStatus } from "@a2a-js/sdk";
import { LegacyJsonRpcTransportHandler } from "@a2a-js/sdk/compat/v0_3/server";
import {
  AgentEvent,
  type AgentExecutor,
  DefaultRequestHandler,
  type ExecutionEventBus,
  InMemoryTaskStore,
  type RequestContext,
  ServerCallContext,
} from "@a2a-js/sdk/server";
import { type ReceivedRequest, readRequest } from "./received-request.js";

/**
 * A local A2A agent on 127.0.0.1, built with the SDK's server side (v0.3 JSON-RPC on
 * node:http). What it does depends on the message's first text:
 * - "slow…": a task, answered at once in state `submitted` (as A2A lets an agent do
 *   whatever `blocking` says), completed ~300 ms later with the artifact "done: <text>";
 * - "stuck…": a task answered at once, `working` until it is canceled;
 * - "fail…": a `failed` task whose status message is "cannot do: <text>";
 * - anything else: the message "echo: <text>".
 * `message/stream` answers the same way as server-sent events. It serves a v0.3 Agent Card at /.well-known/agent-card.json whose `url` is /rpc.
 */

export interface A2aAgent {
  baseUrl: string;
  cardUrl: string;
  rpcUrl: string;
  /** The v0.3 card served at `cardUrl`. */
  card: Record<string, unknown>;
  /** Every request received (the card GET too), with headers and the parsed JSON-RPC body. */
  requests: ReceivedRequest[];
  close(): Promise<void>;
}

export interface A2aAgentOptions {
  /** Fields that replace or extend the default card's. */
  card?: Record<string, unknown>;
}

const textPart = (text: string): Part => ({
  content: { $case: "text", value: text },
  metadata: undefined,
  filename: "",
  mediaType: "text/plain",
});

const agentMessage = (text: string, contextId: string, taskId = ""): Message => ({
  messageId: randomUUID(),
  contextId,
  taskId,
  role: Role.ROLE_AGENT,
  parts: [textPart(text)],
  metadata: undefined,
  extensions: [],
  referenceTaskIds: [],
});

const status = (state: TaskState, message?: Message): TaskStatus => ({
  state,
  message,
  timestamp: new Date().toISOString(),
});

class TestExecutor implements AgentExecutor {
  /** Ends each stuck task's wait: on cancel, or when the agent closes. */
  readonly stuck = new Map<string, () => void>();

  execute = async (request: RequestContext, bus: ExecutionEventBus): Promise<void> => {
    const message = request.userMessage;
    const first = message.parts[0]?.content;
    const text = first?.$case === "text" ? first.value : "";
    const { taskId, contextId } = request;
    if (!["slow", "stuck", "fail"].some((prefix) => text.startsWith(prefix))) {
      bus.publish(AgentEvent.message(agentMessage(`echo: ${text}`, contextId)));
      return;
    }
    bus.publish(
      AgentEvent.task({
        id: taskId,
        contextId,
        status: status(TaskState.TASK_STATE_SUBMITTED),
        artifacts: [],
        history: [message],
        metadata: undefined,
      }),
    );
    const update = (next: TaskStatus) =>
      bus.publish(AgentEvent.statusUpdate({ taskId, contextId, status: next, metadata: undefined }));
    if (text.startsWith("fail")) {
      update(status(TaskState.TASK_STATE_FAILED, agentMessage(`cannot do: ${text}`, contextId, taskId)));
      return;
    }
    update(status(TaskState.TASK_STATE_WORKING));
    if (text.startsWith("stuck")) {
      await new Promise<void>((resolve) => this.stuck.set(taskId, resolve));
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
    bus.publish(
      AgentEvent.artifactUpdate({
        taskId,
        contextId,
        append: false,
        lastChunk: true,
        metadata: undefined,
        artifact: {
          artifactId: "result",
          name: "result",
          description: "",
          parts: [textPart(`done: ${text}`)],
          metadata: undefined,
          extensions: [],
        },
      }),
    );
    update(status(TaskState.TASK_STATE_COMPLETED, agentMessage("finished", contextId, taskId)));
  };

  cancelTask = async (taskId: string, bus: ExecutionEventBus): Promise<void> => {
    bus.publish(
      AgentEvent.statusUpdate({
        taskId,
        contextId: "",
        status: status(TaskState.TASK_STATE_CANCELED),
        metadata: undefined,
      }),
    );
    this.stuck.get(taskId)?.();
    this.stuck.delete(taskId);
  };
}

/** The v1.0 card the SDK's request handler needs, whatever the wire speaks. */
function coreCard(rpcUrl: string): AgentCard {
  return {
    name: "Test A2A Agent",
    description: "Echoes, and runs slow, stuck and failing tasks",
    version: "1.0.0",
    provider: undefined,
    supportedInterfaces: [{ url: rpcUrl, protocolBinding: "JSONRPC", tenant: "", protocolVersion: "0.3" }],
    capabilities: { streaming: true, pushNotifications: false, extensions: [] },
    securitySchemes: {},
    securityRequirements: [],
    defaultInputModes: ["text/plain"],
    defaultOutputModes: ["text/plain"],
    signatures: [],
    skills: [],
  };
}

function v03Card(rpcUrl: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    protocolVersion: "0.3.0",
    name: "Test A2A Agent",
    description: "Echoes, and runs slow, stuck and failing tasks",
    version: "1.0.0",
    url: rpcUrl,
    preferredTransport: "JSONRPC",
    capabilities: { streaming: true, pushNotifications: false },
    defaultInputModes: ["text/plain", "application/json"],
    defaultOutputModes: ["text/plain"],
    skills: [{ id: "echo", name: "Echo", description: "Echoes the text it gets", tags: ["echo"] }],
    securitySchemes: { bearer: { type: "http", scheme: "bearer" } },
    security: [{ bearer: [] }],
    ...overrides,
  };
}

/** Whether a message/send request's first text asks for a task answered at once. */
function answersAtOnce(body: Record<string, unknown>): boolean {
  const params = body.params as { message?: { parts?: Array<{ text?: unknown }> } } | undefined;
  const text = params?.message?.parts?.[0]?.text;
  return body.method === "message/send" && typeof text === "string" && /^(slow|stuck)/.test(text);
}

export async function startA2aAgent(options: A2aAgentOptions = {}): Promise<A2aAgent> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const rpcUrl = `${baseUrl}/rpc`;
  const card = v03Card(rpcUrl, options.card);
  const executor = new TestExecutor();
  const handler = new LegacyJsonRpcTransportHandler(
    new DefaultRequestHandler(coreCard(rpcUrl), new InMemoryTaskStore(), executor),
  );
  const requests: ReceivedRequest[] = [];

  server.on("request", async (incoming, response) => {
    const request = await readRequest(incoming);
    requests.push(request);
    if (request.method === "GET" && request.path === "/.well-known/agent-card.json") {
      response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(card));
      return;
    }
    if (request.method !== "POST" || request.path !== "/rpc") {
      response.writeHead(404).end();
      return;
    }
    // The SDK answers a blocking message/send only once the task ends; `blocking: false`
    // makes it answer with the task as it starts.
    const body = answersAtOnce(request.body)
      ? {
          ...request.body,
          params: { ...(request.body.params as object), configuration: { blocking: false } },
        }
      : request.rawBody;
    const answer = await handler.handle(body, new ServerCallContext({ requestedVersion: "0.3" }));
    if (!(Symbol.asyncIterator in answer)) {
      response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(answer));
      return;
    }
    // message/stream: one server-sent event per JSON-RPC answer.
    response.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    for await (const event of answer) response.write(`data: ${JSON.stringify(event)}\n\n`);
    response.end();
  });

  return {
    baseUrl,
    cardUrl: `${baseUrl}/.well-known/agent-card.json`,
    rpcUrl,
    card,
    requests,
    async close() {
      for (const release of executor.stuck.values()) release();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
