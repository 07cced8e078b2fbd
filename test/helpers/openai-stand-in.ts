import { randomBytes } from "node:crypto";
import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { type ReceivedRequest, readRequest } from "./received-request.js";

/**
 * A stand-in for an OpenAI-compatible chat-completions endpoint on 127.0.0.1: streams the
 * configured reply one SSE chunk per token (as `chat.completion.chunk`s, then a usage chunk
 * when asked for and `data: [DONE]`), answers non-streaming requests with one
 * `chat.completion`, and can be told to fail with an OpenAI-style error body or to hang.
 */

/** What the stand-in received. */
export type StandInRequest = ReceivedRequest;

export interface OpenAiStandInOptions {
  reply?: string;
  /** How the reply is split into stream chunks; defaults to words with their leading spaces. */
  tokens?: string[];
  /** Wait before each token chunk. */
  tokenDelayMs?: number;
  /** When set, requests without `authorization: Bearer <apiKey>` get a 401 as OpenAI sends it. */
  apiKey?: string;
}

/** Where a hanging answer stops: before any header, or after the first token. */
export type HangMode = "before-headers" | "mid-stream";

export interface OpenAiStandIn {
  /** The base URL, e.g. http://127.0.0.1:1234/v1 (requests go to `${url}/chat/completions`). */
  url: string;
  requests: StandInRequest[];
  setReply(text: string, tokens?: string[]): void;
  setTokenDelay(ms: number): void;
  /** The next request (or the next one after earlier queued failures) fails like OpenAI does. */
  failNext(status: number, message: string): void;
  /** The next request never finishes (its socket stays open until close()). */
  hangNext(mode?: HangMode): void;
  close(): Promise<void>;
}

type Next = { kind: "fail"; status: number; message: string } | { kind: "hang"; mode: HangMode };

/** Splits text before each whitespace, so the tokens join back to exactly the text. */
export function splitIntoTokens(text: string): string[] {
  return text.split(/(?=\s)/).filter((token) => token !== "");
}

export async function startOpenAiStandIn(options: OpenAiStandInOptions = {}): Promise<OpenAiStandIn> {
  let reply = options.reply ?? "Hello from the stand-in.";
  let tokens = options.tokens ?? splitIntoTokens(reply);
  let tokenDelayMs = options.tokenDelayMs ?? 0;
  const queue: Next[] = [];
  const requests: StandInRequest[] = [];
  const sockets = new Set<Socket>();

  const server = createServer(async (incoming, response) => {
    const request = await readRequest(incoming);
    requests.push(request);
    void answer(request, response, queue.shift(), { reply, tokens, tokenDelayMs }, options.apiKey);
  });
  server.on("connection", (socket) => {
    socket.setNoDelay(true);
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    setReply(text, next) {
      reply = text;
      tokens = next ?? splitIntoTokens(text);
    },
    setTokenDelay(ms) {
      tokenDelayMs = ms;
    },
    failNext(status, message) {
      queue.push({ kind: "fail", status, message });
    },
    hangNext(mode = "before-headers") {
      queue.push({ kind: "hang", mode });
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

interface Script {
  reply: string;
  tokens: string[];
  tokenDelayMs: number;
}

async function answer(
  request: StandInRequest,
  response: ServerResponse,
  next: Next | undefined,
  script: Script,
  apiKey: string | undefined,
): Promise<void> {
  if (request.method !== "POST" || request.path.split("?")[0] !== "/v1/chat/completions") {
    return sendError(response, 404, `Invalid URL (${request.method} ${request.path})`);
  }
  if (apiKey !== undefined && request.headers.authorization !== `Bearer ${apiKey}`) {
    const given = String(request.headers.authorization ?? "").replace(/^Bearer /, "");
    // OpenAI shows only the ends of a wrong key.
    const masked = given.length > 8 ? `${given.slice(0, 3)}*****${given.slice(-4)}` : "";
    return sendError(response, 401, `Incorrect API key provided: ${masked}.`);
  }
  if (next?.kind === "fail") return sendError(response, next.status, next.message);
  if (next?.kind === "hang" && next.mode === "before-headers") return;
  const { body } = request;
  if (typeof body.model !== "string" || !Array.isArray(body.messages)) {
    return sendError(response, 400, "you must provide a model parameter and messages");
  }
  const maxTokens = typeof body.max_tokens === "number" ? body.max_tokens : Number.POSITIVE_INFINITY;
  const sent = script.tokens.slice(0, maxTokens);
  const finishReason = sent.length < script.tokens.length ? "length" : "stop";
  const promptTokens = (body.messages as { content?: unknown }[])
    .map((message) => splitIntoTokens(String(message.content ?? "")).length)
    .reduce((sum, count) => sum + count, 0);
  const usage = {
    prompt_tokens: promptTokens,
    completion_tokens: sent.length,
    total_tokens: promptTokens + sent.length,
  };
  const id = `chatcmpl-${randomBytes(12).toString("hex")}`;
  const created = Math.floor(Date.now() / 1000);

  if (body.stream !== true) {
    response.writeHead(200, { "content-type": "application/json" });
    response.end(
      JSON.stringify({
        id,
        object: "chat.completion",
        created,
        model: body.model,
        choices: [
          {
            index: 0,
            message: { role: "assistant", content: sent.join(""), refusal: null },
            logprobs: null,
            finish_reason: finishReason,
          },
        ],
        usage,
      }),
    );
    return;
  }

  const includeUsage =
    (body.stream_options as { include_usage?: unknown } | undefined)?.include_usage === true;
  const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) =>
    `data: ${JSON.stringify({
      id,
      object: "chat.completion.chunk",
      created,
      model: body.model,
      choices,
      // With include_usage every chunk carries `usage: null` but the last.
      ...(includeUsage ? { usage: null } : {}),
      ...extra,
    })}\n\n`;
  const delta = (content: Record<string, unknown>, finish: string | null) => ({
    index: 0,
    delta: content,
    logprobs: null,
    finish_reason: finish,
  });

  let gone = false;
  response.on("close", () => {
    gone = true;
  });
  response.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    connection: "keep-alive",
  });
  response.flushHeaders();
  response.write(chunk([delta({ role: "assistant", content: "", refusal: null }, null)]));
  for (const [index, token] of sent.entries()) {
    if (script.tokenDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, script.tokenDelayMs));
    if (gone) return;
    response.write(chunk([delta({ content: token }, null)]));
    if (index === 0 && next?.kind === "hang") return;
  }
  response.write(chunk([delta({}, finishReason)]));
  if (includeUsage) response.write(chunk([], { usage }));
  response.end("data: [DONE]\n\n");
}

function sendError(response: ServerResponse, status: number, message: string): void {
  const type = status === 429 ? "requests" : status >= 500 ? "server_error" : "invalid_request_error";
  const code = status === 429 ? "rate_limit_exceeded" : status === 401 ? "invalid_api_key" : null;
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (status === 429) headers["retry-after"] = "2";
  response.writeHead(status, headers);
  response.end(JSON.stringify({ error: { message, type, param: null, code } }, null, 2));
}
