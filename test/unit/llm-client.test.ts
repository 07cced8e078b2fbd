import { createServer, type Server } from "node:net";
import fc from "fast-check";
import { request } from "undici";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  type ChatRequest,
  LlmError,
  MAX_LINE_BYTES,
  MAX_RESPONSE_BYTES,
  type SendFn,
  SseParser,
  sendWithUndici,
  streamChatCompletion,
} from "../../src/executor/llm-client.js";
import { type OpenAiStandIn, startOpenAiStandIn } from "../helpers/openai-stand-in.js";

const API_KEY = "sk-test-4f9c2b7e1d8a6350c1e2f3a4b5c6d7e8";

let standIn: OpenAiStandIn;

beforeAll(async () => {
  standIn = await startOpenAiStandIn();
});

afterEach(() => {
  standIn.requests.length = 0;
  standIn.setReply("Hello from the stand-in.");
  standIn.setTokenDelay(0);
});

afterAll(async () => {
  await standIn.close();
});

function chat(overrides: Partial<ChatRequest> = {}): ChatRequest {
  return {
    baseUrl: standIn.url,
    apiKey: API_KEY,
    model: "gpt-4o-mini",
    messages: [
      { role: "system", content: "You are terse." },
      { role: "user", content: "Say hello." },
    ],
    timeoutMs: 5_000,
    ...overrides,
  };
}

async function failure(promise: Promise<unknown>): Promise<LlmError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(LlmError);
  return error as LlmError;
}

/** A transport that answers with these bytes, in exactly these chunks. */
function replay(chunks: Uint8Array[], contentType = "text/event-stream"): SendFn {
  return async () => ({
    status: 200,
    headers: { "content-type": contentType },
    body: (async function* () {
      yield* chunks;
    })(),
  });
}

/** A stream with everything awkward the SSE format allows: CRLF, bare CR, comments, split data lines. */
const AWKWARD_STREAM = Buffer.from(
  [
    ": keep-alive\r\n\r\n",
    "retry: 3000\r\nid: 1\r\n",
    'data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}],"usage":null}\r\n\r\n',
    'data:{"choices":[{"index":0,"delta":{"content":"Grüße"},"finish_reason":null}]}\n\n',
    'data: {"choices":[{"index":0,\r\ndata: "delta":{"content":", 世界 🌍"},"finish_reason":null}]}\r\n\r\n',
    'event: message\rdata: {"choices":[{"index":0,"delta":{"content":"!"},"finish_reason":null}]}\r\r',
    ":\n",
    'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n',
    'data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8}}\n\n',
    "data: [DONE]\n\n",
  ].join(""),
  "utf8",
);
const AWKWARD_RESULT = {
  tokens: ["Grüße", ", 世界 🌍", "!"],
  result: {
    content: "Grüße, 世界 🌍!",
    finishReason: "stop",
    usage: { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 },
  },
};

/** Offsets that cut a UTF-8 character, a CRLF, a field name and `[DONE]` in two. */
function awkwardCuts(): number[] {
  const at = (text: string, plus: number) => AWKWARD_STREAM.indexOf(Buffer.from(text, "utf8")) + plus;
  return [
    at("\r\n\r\n", 1),
    at("data:{", 3),
    at("ü", 1),
    at("🌍", 1),
    at("🌍", 3),
    at('\r\ndata: "delta', 1),
    at("\r\r", 1),
    at("[DONE]", 3),
  ].sort((a, b) => a - b);
}

function cutAt(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set([0, ...cuts, bytes.length])].sort((a, b) => a - b);
  return points.slice(1).map((end, index) => bytes.subarray(points[index], end));
}

describe("streamChatCompletion: happy path", () => {
  it("calls onToken with each delta in order, and the tokens join to the reply", async () => {
    const tokens = ["The", " quick", " brown", " fox", " jumps", "."];
    standIn.setReply(tokens.join(""), tokens);
    const received: string[] = [];
    const result = await streamChatCompletion(chat(), (token) => received.push(token));
    expect(received).toEqual(tokens);
    expect(result.content).toBe("The quick brown fox jumps.");
    expect(result.finishReason).toBe("stop");
  });

  it("parses the usage chunk sent before [DONE]", async () => {
    standIn.setReply("one two three");
    const result = await streamChatCompletion(chat(), () => {});
    // The stand-in counts words: 5 in the prompt, 3 in the reply.
    expect(result.usage).toEqual({ prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 });
  });

  it("posts model, messages, stream options, temperature and max_tokens to /chat/completions", async () => {
    standIn.setReply("a b c d");
    const result = await streamChatCompletion(
      chat({ baseUrl: `${standIn.url}/`, temperature: 0.2, maxTokens: 2 }),
      () => {},
    );
    expect(result).toMatchObject({ content: "a b", finishReason: "length" });
    const [sent] = standIn.requests;
    expect(sent?.method).toBe("POST");
    expect(sent?.path).toBe("/v1/chat/completions");
    expect(sent?.headers["content-type"]).toBe("application/json");
    expect(sent?.body).toEqual({
      model: "gpt-4o-mini",
      messages: chat().messages,
      stream: true,
      stream_options: { include_usage: true },
      temperature: 0.2,
      max_tokens: 2,
    });
  });

  it("leaves out temperature and max_tokens when not given", async () => {
    await streamChatCompletion(chat(), () => {});
    expect(standIn.requests[0]?.body).not.toHaveProperty("temperature");
    expect(standIn.requests[0]?.body).not.toHaveProperty("max_tokens");
  });

  it("sends the key as a bearer token, and no authorization header without a key", async () => {
    await streamChatCompletion(chat(), () => {});
    await streamChatCompletion(chat({ apiKey: undefined }), () => {});
    expect(standIn.requests[0]?.headers.authorization).toBe(`Bearer ${API_KEY}`);
    expect(standIn.requests[1]?.headers).not.toHaveProperty("authorization");
  });

  it("accepts a plain JSON completion from a server that ignores stream: true", async () => {
    standIn.setReply("Not streamed at all.");
    const unstreamed: SendFn = (url, init) =>
      sendWithUndici(url, { ...init, body: JSON.stringify({ ...JSON.parse(init.body), stream: false }) });
    const received: string[] = [];
    const result = await streamChatCompletion(chat(), (token) => received.push(token), unstreamed);
    expect(received).toEqual(["Not streamed at all."]);
    expect(result).toMatchObject({ content: "Not streamed at all.", finishReason: "stop" });
    expect(result.usage?.completion_tokens).toBe(4);
  });
});

describe("streamChatCompletion: SSE parsing", () => {
  let raw: Server;
  let rawUrl: string;
  const cuts = awkwardCuts();

  beforeAll(async () => {
    // A raw HTTP server, so each piece leaves in its own TCP segment at a chosen boundary.
    raw = createServer((socket) => {
      socket.setNoDelay(true);
      socket.once("data", async () => {
        socket.write("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n");
        for (const piece of cutAt(AWKWARD_STREAM, cuts)) {
          await new Promise((resolve) => setTimeout(resolve, 15));
          socket.write(piece);
        }
        socket.end();
      });
    });
    await new Promise<void>((resolve) => raw.listen(0, "127.0.0.1", resolve));
    const address = raw.address();
    rawUrl = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}/v1`;
  });

  afterAll(async () => {
    await new Promise((resolve) => raw.close(resolve));
  });

  it("parses a stream split at awkward chunk boundaries by a raw server", async () => {
    let chunks = 0;
    const counting: SendFn = async (url, init) => {
      const response = await sendWithUndici(url, init);
      const body = response.body;
      return {
        ...response,
        body: (async function* () {
          for await (const chunk of body) {
            chunks++;
            yield chunk;
          }
        })(),
      };
    };
    const received: string[] = [];
    const result = await streamChatCompletion(
      chat({ baseUrl: rawUrl }),
      (token) => received.push(token),
      counting,
    );
    expect(received).toEqual(AWKWARD_RESULT.tokens);
    expect(result).toEqual(AWKWARD_RESULT.result);
    // The boundaries really reached the parser (TCP may still merge a few pieces).
    expect(chunks).toBeGreaterThan(cuts.length / 2);
  });

  it("parses the same stream one byte at a time", async () => {
    const bytes = [...AWKWARD_STREAM].map((byte) => Uint8Array.of(byte));
    const received: string[] = [];
    const result = await streamChatCompletion(chat(), (token) => received.push(token), replay(bytes));
    expect(received).toEqual(AWKWARD_RESULT.tokens);
    expect(result).toEqual(AWKWARD_RESULT.result);
  });

  it("parses the same stream however it is cut", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(fc.integer({ min: 1, max: AWKWARD_STREAM.length - 1 }), { maxLength: 40 }),
        async (points) => {
          const received: string[] = [];
          const result = await streamChatCompletion(
            chat(),
            (token) => received.push(token),
            replay(cutAt(AWKWARD_STREAM, points)),
          );
          expect(received).toEqual(AWKWARD_RESULT.tokens);
          expect(result).toEqual(AWKWARD_RESULT.result);
        },
      ),
      { numRuns: 200 },
    );
  });

  it("joins the data lines of one event with newlines and keeps its event name", () => {
    const parser = new SseParser();
    const events = parser.push(Buffer.from("event: error\ndata: first\ndata:second\n\ndata: third\n"));
    expect(events).toEqual([{ type: "error", data: "first\nsecond" }]);
    expect(parser.end()).toEqual([{ type: "message", data: "third" }]);
  });

  it("resolves at [DONE] even when the server keeps the connection open", async () => {
    const done = Buffer.from(
      'data: {"choices":[{"index":0,"delta":{"content":"ok"},"finish_reason":null}]}\n\ndata: [DONE]\n\n',
    );
    const openEnded: SendFn = async () => ({
      status: 200,
      headers: { "content-type": "text/event-stream" },
      body: (async function* () {
        yield done;
        await new Promise(() => {});
      })(),
    });
    const result = await streamChatCompletion(chat({ timeoutMs: 2_000 }), () => {}, openEnded);
    expect(result).toEqual({ content: "ok", finishReason: null });
  });

  it("accepts a stream that ends without [DONE] after a finish reason", async () => {
    const text =
      'data: {"choices":[{"index":0,"delta":{"content":"ok"},"finish_reason":null}]}\n\n' +
      'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}';
    const result = await streamChatCompletion(chat(), () => {}, replay([Buffer.from(text)]));
    expect(result).toEqual({ content: "ok", finishReason: "stop" });
  });

  it("fails a stream cut off before a finish reason or [DONE], as retryable", async () => {
    const text = 'data: {"choices":[{"index":0,"delta":{"content":"half"},"finish_reason":null}]}\n\n';
    const error = await failure(streamChatCompletion(chat(), () => {}, replay([Buffer.from(text)])));
    expect(error).toMatchObject({ code: "incomplete_stream", retryable: true });
  });

  it("fails data that is not JSON", async () => {
    const error = await failure(
      streamChatCompletion(chat(), () => {}, replay([Buffer.from("data: {not json\n\n")])),
    );
    expect(error).toMatchObject({ code: "bad_stream", retryable: false });
  });

  it("fails on an error object inside the stream", async () => {
    const text =
      'data: {"choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]}\n\n' +
      'data: {"error":{"message":"The server had an error while processing your request.","type":"server_error"}}\n\n';
    const error = await failure(streamChatCompletion(chat(), () => {}, replay([Buffer.from(text)])));
    expect(error).toMatchObject({ code: "provider_error", retryable: true });
    expect(error.message).toContain("The server had an error");
  });

  it("fails a line over 1 MB", async () => {
    const piece = Buffer.alloc(64 * 1024, "x");
    const chunks = [Buffer.from("data: "), ...Array.from({ length: 20 }, () => piece)];
    expect(20 * piece.length).toBeGreaterThan(MAX_LINE_BYTES);
    const error = await failure(streamChatCompletion(chat(), () => {}, replay(chunks)));
    expect(error).toMatchObject({ code: "response_too_large", retryable: false });
    expect(error.message).toContain("line");
  });

  it("fails an answer over 5 MB, even of short lines", async () => {
    const piece = Buffer.from(`: ${"x".repeat(1022)}\n`.repeat(64));
    const count = Math.ceil(MAX_RESPONSE_BYTES / piece.length) + 1;
    const error = await failure(
      streamChatCompletion(chat(), () => {}, replay(Array.from({ length: count }, () => piece))),
    );
    expect(error).toMatchObject({ code: "response_too_large", retryable: false });
    expect(error.message).not.toContain("line");
  });
});

describe("streamChatCompletion: errors", () => {
  it("makes a 429 a retryable error with its status, the provider's message and Retry-After", async () => {
    standIn.failNext(429, "Rate limit reached for gpt-4o-mini on requests per min (RPM): Limit 3.");
    const error = await failure(streamChatCompletion(chat(), () => {}));
    expect(error).toMatchObject({ code: "http_error", status: 429, retryable: true, retryAfterMs: 2_000 });
    expect(error.message).toContain("Rate limit reached for gpt-4o-mini");
  });

  it.each([408, 500, 502, 503])("makes a %i retryable", async (status) => {
    standIn.failNext(status, "try again");
    const error = await failure(streamChatCompletion(chat(), () => {}));
    expect(error).toMatchObject({ status, retryable: true });
  });

  it.each([400, 401, 403, 404, 422])("makes a %i not retryable", async (status) => {
    standIn.failNext(status, "Invalid value for 'temperature'.");
    const error = await failure(streamChatCompletion(chat(), () => {}));
    expect(error).toMatchObject({ code: "http_error", status, retryable: false });
    expect(error.message).toContain("Invalid value for 'temperature'.");
  });

  it("never puts the key in an error, even when the provider echoes it", async () => {
    standIn.failNext(401, `Incorrect API key provided: ${API_KEY}. You can find your key at ...`);
    const error = await failure(streamChatCompletion(chat(), () => {}));
    expect(error.status).toBe(401);
    expect(error.message).toContain("Incorrect API key provided: [redacted]");
    expect(`${error.message} ${error.stack} ${JSON.stringify(error)}`).not.toContain(API_KEY);
    expect(error.message).not.toContain(API_KEY.slice(0, 20));
  });

  it("answers a wrong key with the provider's 401 and without the key", async () => {
    const guarded = await startOpenAiStandIn({ apiKey: "sk-the-right-one-0000000000000000" });
    try {
      const error = await failure(streamChatCompletion(chat({ baseUrl: guarded.url }), () => {}));
      expect(error).toMatchObject({ status: 401, retryable: false });
      expect(error.message).toContain("Incorrect API key provided");
      expect(error.message).not.toContain(API_KEY);
    } finally {
      await guarded.close();
    }
  });

  it("cuts a long error body to a short excerpt", async () => {
    standIn.failNext(400, `bad ${"word ".repeat(5_000)}`);
    const error = await failure(streamChatCompletion(chat(), () => {}));
    expect(error.message.length).toBeLessThan(400);
  });

  it("makes a refused connection a retryable network error", async () => {
    const closed = await startOpenAiStandIn();
    await closed.close();
    const error = await failure(streamChatCompletion(chat({ baseUrl: closed.url }), () => {}));
    expect(error).toMatchObject({ code: "network", retryable: true });
    expect(error.status).toBeUndefined();
  });

  it("times out on a server that never answers", async () => {
    standIn.hangNext();
    const error = await failure(streamChatCompletion(chat({ timeoutMs: 200 }), () => {}));
    expect(error).toMatchObject({ code: "timeout", retryable: true });
    expect(error.message).toContain("200 ms");
  });

  it("times out on a stream that stops mid-answer", async () => {
    standIn.hangNext("mid-stream");
    const received: string[] = [];
    const error = await failure(
      streamChatCompletion(chat({ timeoutMs: 300 }), (token) => received.push(token)),
    );
    expect(error).toMatchObject({ code: "timeout", retryable: true });
    expect(received).toEqual(["Hello"]);
  });

  it("times out even with a transport that ignores the signal", async () => {
    const deaf: SendFn = () => new Promise(() => {});
    const error = await failure(streamChatCompletion(chat({ timeoutMs: 100 }), () => {}, deaf));
    expect(error).toMatchObject({ code: "timeout" });
  });

  it("stops when the caller's signal aborts, mid-stream", async () => {
    standIn.setReply("one two three four five six seven eight nine ten");
    standIn.setTokenDelay(30);
    const controller = new AbortController();
    const received: string[] = [];
    const error = await failure(
      streamChatCompletion(chat({ signal: controller.signal }), (token) => {
        received.push(token);
        controller.abort();
      }),
    );
    expect(error).toMatchObject({ code: "aborted", retryable: false });
    expect(received).toEqual(["one"]);
  });

  it("sends nothing when the signal has already aborted", async () => {
    let calls = 0;
    const counting: SendFn = (url, init) => {
      calls++;
      return sendWithUndici(url, init);
    };
    const error = await failure(
      streamChatCompletion(chat({ signal: AbortSignal.abort() }), () => {}, counting),
    );
    expect(error).toMatchObject({ code: "aborted" });
    expect(calls).toBe(0);
    expect(standIn.requests).toHaveLength(0);
  });

  it("lets an error thrown by onToken through unchanged", async () => {
    const thrown = new Error("consumer is full");
    await expect(
      streamChatCompletion(chat(), () => {
        throw thrown;
      }),
    ).rejects.toBe(thrown);
  });
});

describe("OpenAI stand-in", () => {
  it("answers a non-streaming request with one chat.completion", async () => {
    standIn.setReply("Plain answer.");
    const response = await request(`${standIn.url}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "hi" }] }),
    });
    const body = (await response.body.json()) as Record<string, unknown>;
    expect(response.statusCode).toBe(200);
    expect(body).toMatchObject({
      object: "chat.completion",
      choices: [
        { index: 0, message: { role: "assistant", content: "Plain answer." }, finish_reason: "stop" },
      ],
      usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 },
    });
  });
});
