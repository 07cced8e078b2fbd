import { request as undiciRequest } from "undici";

/**
 * A client for OpenAI-compatible chat completions that streams the answer (server-sent
 * events) and bounds everything it reads: time, bytes, and the length of one line.
 */

export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

export interface ChatRequest {
  /** e.g. https://api.openai.com/v1; a trailing slash is ignored. */
  baseUrl: string;
  apiKey?: string;
  model: string;
  messages: ChatMessage[];
  temperature?: number;
  maxTokens?: number;
  signal?: AbortSignal;
  /** Deadline for the whole exchange, from sending the request to the last byte of the answer. */
  timeoutMs: number;
}

export interface ChatUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export interface ChatResult {
  content: string;
  finishReason: string | null;
  usage?: ChatUsage;
}

/** How the exchange reaches the provider; the lead can route it through the SSRF guard. */
export type SendFn = (
  url: string,
  init: { method: string; headers: Record<string, string>; body: string; signal: AbortSignal },
) => Promise<{
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: AsyncIterable<Uint8Array>;
}>;

export type LlmErrorCode =
  /** The provider answered with a non-2xx status. */
  | "http_error"
  /** The provider reported an error inside a 200 stream. */
  | "provider_error"
  | "timeout"
  /** The caller's signal aborted the call. */
  | "aborted"
  /** Connecting, sending or reading failed. */
  | "network"
  /** The answer is not a chat-completion stream (bad JSON, wrong shape). */
  | "bad_stream"
  /** The stream ended before `[DONE]` and without a finish reason. */
  | "incomplete_stream"
  | "response_too_large";

/** Thrown for HTTP errors, bad streams and timeouts; retry logic asks `retryable`, never the text. */
export class LlmError extends Error {
  readonly code: LlmErrorCode;
  readonly status?: number;
  readonly retryable: boolean;
  /** From the provider's Retry-After header, when it sent one. */
  readonly retryAfterMs?: number;

  constructor(
    message: string,
    options: {
      code: LlmErrorCode;
      retryable: boolean;
      status?: number;
      retryAfterMs?: number;
      cause?: unknown;
    },
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "LlmError";
    this.code = options.code;
    this.retryable = options.retryable;
    if (options.status !== undefined) this.status = options.status;
    if (options.retryAfterMs !== undefined) this.retryAfterMs = options.retryAfterMs;
  }
}

export const MAX_RESPONSE_BYTES = 5 * 1024 * 1024;
export const MAX_LINE_BYTES = 1024 * 1024;
/** Enough of an error answer to find the provider's message, never a whole page. */
const MAX_ERROR_BODY_BYTES = 16 * 1024;
const MAX_EXCERPT_CHARS = 300;

/** The default transport: undici, no redirects followed, aborted by the signal. */
export const sendWithUndici: SendFn = async (url, init) => {
  const response = await undiciRequest(url, {
    method: init.method as "POST",
    headers: init.headers,
    body: init.body,
    signal: init.signal,
  });
  return { status: response.statusCode, headers: response.headers, body: response.body };
};

/** Streams a chat completion: onToken is called with each content delta, in order; resolves with the whole text. */
export async function streamChatCompletion(
  request: ChatRequest,
  onToken: (token: string) => void,
  send: SendFn = sendWithUndici,
): Promise<ChatResult> {
  if (!Number.isFinite(request.timeoutMs) || request.timeoutMs <= 0) {
    throw new RangeError(`timeoutMs must be a positive number, got ${request.timeoutMs}`);
  }
  const redact = redactor(request.apiKey);
  const deadline = new Deadline(request.timeoutMs, request.signal, redact);
  const headers: Record<string, string> = {
    "content-type": "application/json",
    accept: "text/event-stream",
  };
  if (request.apiKey) headers.authorization = `Bearer ${request.apiKey}`;
  const body: Record<string, unknown> = {
    model: request.model,
    messages: request.messages,
    stream: true,
    stream_options: { include_usage: true },
  };
  if (request.temperature !== undefined) body.temperature = request.temperature;
  if (request.maxTokens !== undefined) body.max_tokens = request.maxTokens;
  const url = `${request.baseUrl.replace(/\/+$/, "")}/chat/completions`;

  let reader: BodyReader | undefined;
  try {
    deadline.throwIfAborted();
    const sent = send(url, { method: "POST", headers, body: JSON.stringify(body), signal: deadline.signal });
    // A transport that ignores the signal may still answer after the deadline: close that answer.
    sent.then(
      (late) => deadline.signal.aborted && new BodyReader(late.body, deadline).close(),
      () => {},
    );
    const response = await deadline.guard(sent);
    reader = new BodyReader(response.body, deadline);
    if (response.status < 200 || response.status > 299) {
      throw await httpError(response.status, response.headers, reader, redact);
    }
    const contentType = String(header(response.headers, "content-type") ?? "").toLowerCase();
    // Some compatible servers ignore `stream: true` and answer with one JSON completion.
    if (contentType.includes("application/json")) return await readJsonCompletion(reader, onToken, redact);
    return await readEventStream(reader, onToken, redact);
  } finally {
    reader?.close();
    deadline.dispose();
  }
}

async function readEventStream(
  reader: BodyReader,
  onToken: (token: string) => void,
  redact: (text: string) => string,
): Promise<ChatResult> {
  const parser = new SseParser();
  const state: StreamState = { content: "", finishReason: null, usage: undefined, done: false };
  // Stops at `[DONE]` without reading further: a server may keep the connection open after it.
  for (let bytes = await reader.next(); bytes !== null; bytes = state.done ? null : await reader.next()) {
    for (const event of parser.push(bytes)) handleEvent(event, state, onToken, redact);
  }
  if (!state.done) for (const event of parser.end()) handleEvent(event, state, onToken, redact);
  // Some compatible servers close without `[DONE]`; a finish reason says the answer is whole.
  if (!state.done && state.finishReason === null) {
    throw new LlmError("LLM stream ended before it was complete", {
      code: "incomplete_stream",
      retryable: true,
    });
  }
  const { content, finishReason, usage } = state;
  return usage ? { content, finishReason, usage } : { content, finishReason };
}

interface StreamState {
  content: string;
  finishReason: string | null;
  usage: ChatUsage | undefined;
  done: boolean;
}

function handleEvent(
  event: SseEvent,
  state: StreamState,
  onToken: (token: string) => void,
  redact: (text: string) => string,
): void {
  if (state.done) return; // anything after `[DONE]` in the same chunk
  if (event.data.trim() === "[DONE]") {
    state.done = true;
    return;
  }
  // Chat completions send unnamed events; an `error` event is the only named one that matters.
  if (event.type !== "message" && event.type !== "error") return;
  const chunk = parseJson(event.data, redact);
  const failure = providerFailure(chunk, event.type === "error", redact);
  if (failure) throw failure;
  const choices = chunk.choices;
  if (choices !== undefined && choices !== null && !Array.isArray(choices)) {
    throw new LlmError("LLM stream chunk has a malformed choices field", {
      code: "bad_stream",
      retryable: false,
    });
  }
  const choice = firstChoice(choices);
  const delta = isRecord(choice?.delta) ? choice.delta : undefined;
  if (typeof delta?.content === "string" && delta.content !== "") {
    state.content += delta.content;
    onToken(delta.content);
  }
  if (typeof choice?.finish_reason === "string") state.finishReason = choice.finish_reason;
  state.usage = parseUsage(chunk.usage) ?? state.usage;
}

async function readJsonCompletion(
  reader: BodyReader,
  onToken: (token: string) => void,
  redact: (text: string) => string,
): Promise<ChatResult> {
  const completion = parseJson(await reader.text(MAX_RESPONSE_BYTES, true), redact);
  const failure = providerFailure(completion, false, redact);
  if (failure) throw failure;
  const choice = firstChoice(completion.choices);
  const message = isRecord(choice?.message) ? choice.message : undefined;
  if (!message || (typeof message.content !== "string" && message.content !== null)) {
    throw new LlmError("LLM answer is not a chat completion", { code: "bad_stream", retryable: false });
  }
  const content = message.content ?? "";
  if (content !== "") onToken(content);
  const finishReason = typeof choice?.finish_reason === "string" ? choice.finish_reason : null;
  const usage = parseUsage(completion.usage);
  return usage ? { content, finishReason, usage } : { content, finishReason };
}

async function httpError(
  status: number,
  headers: Record<string, string | string[] | undefined>,
  reader: BodyReader,
  redact: (text: string) => string,
): Promise<LlmError> {
  let text = "";
  try {
    text = await reader.text(MAX_ERROR_BODY_BYTES, false);
  } catch (error) {
    // A timeout or abort while reading the error still ends the call that way.
    if (error instanceof LlmError && (error.code === "timeout" || error.code === "aborted")) throw error;
  }
  const excerpt = errorExcerpt(text, redact);
  const retryAfterMs = parseRetryAfter(header(headers, "retry-after"));
  return new LlmError(`LLM provider answered ${status}${excerpt ? `: ${excerpt}` : ""}`, {
    code: "http_error",
    status,
    retryable: status === 408 || status === 429 || status >= 500,
    ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
  });
}

/** The provider's own message from an OpenAI-style error body, or the start of the text. */
function errorExcerpt(text: string, redact: (text: string) => string): string {
  let message = text;
  try {
    const parsed: unknown = JSON.parse(text);
    if (isRecord(parsed)) {
      const error = parsed.error;
      if (isRecord(error) && typeof error.message === "string") message = error.message;
      else if (typeof error === "string") message = error;
      else if (typeof parsed.message === "string") message = parsed.message;
    }
  } catch {
    // Not JSON: the text itself is the best excerpt there is.
  }
  // Redact before cutting, so a cut can never leave a prefix of the key behind.
  const clean = redact(message)
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is removed
    .replace(/[\u0000-\u001f\u007f\s]+/g, " ")
    .trim();
  return clean.length > MAX_EXCERPT_CHARS ? `${clean.slice(0, MAX_EXCERPT_CHARS)}…` : clean;
}

/** An error object inside a 200 answer (OpenAI sends `{"error": {...}}` when a stream fails). */
function providerFailure(
  chunk: Record<string, unknown>,
  errorEvent: boolean,
  redact: (text: string) => string,
): LlmError | undefined {
  if (chunk.error === undefined || chunk.error === null) {
    return errorEvent
      ? new LlmError("LLM provider sent an error event", providerErrorOptions(""))
      : undefined;
  }
  const error = chunk.error;
  const kind = isRecord(error) ? `${String(error.type ?? "")} ${String(error.code ?? "")}` : "";
  const excerpt = errorExcerpt(JSON.stringify(chunk), redact);
  return new LlmError(
    `LLM provider reported an error${excerpt ? `: ${excerpt}` : ""}`,
    providerErrorOptions(kind),
  );
}

function providerErrorOptions(kind: string): { code: LlmErrorCode; retryable: boolean } {
  return { code: "provider_error", retryable: /server_error|rate_limit|overloaded|timeout/.test(kind) };
}

function parseJson(text: string, redact: (text: string) => string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    const excerpt = redact(text).slice(0, 80);
    throw new LlmError(`LLM stream sent data that is not JSON: ${JSON.stringify(excerpt)}`, {
      code: "bad_stream",
      retryable: false,
    });
  }
  if (!isRecord(parsed)) {
    throw new LlmError("LLM stream sent JSON that is not an object", {
      code: "bad_stream",
      retryable: false,
    });
  }
  return parsed;
}

/** The choice with index 0 (we never ask for n > 1), or the first one. */
function firstChoice(choices: unknown): Record<string, unknown> | undefined {
  if (!Array.isArray(choices)) return undefined;
  const records = choices.filter(isRecord);
  return records.find((choice) => choice.index === 0) ?? records[0];
}

function parseUsage(value: unknown): ChatUsage | undefined {
  if (!isRecord(value)) return undefined;
  const { prompt_tokens, completion_tokens, total_tokens } = value;
  if (typeof prompt_tokens !== "number" || typeof completion_tokens !== "number") return undefined;
  return {
    prompt_tokens,
    completion_tokens,
    total_tokens: typeof total_tokens === "number" ? total_tokens : prompt_tokens + completion_tokens,
  };
}

function parseRetryAfter(value: string | string[] | undefined): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (!text) return undefined;
  const seconds = Number(text);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.round(seconds * 1000);
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

function header(headers: Record<string, string | string[] | undefined>, name: string) {
  const key = Object.keys(headers).find((candidate) => candidate.toLowerCase() === name);
  return key === undefined ? undefined : headers[key];
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function redactor(apiKey: string | undefined): (text: string) => string {
  return apiKey ? (text) => text.split(apiKey).join("[redacted]") : (text) => text;
}

/**
 * The call's deadline and the caller's signal, as one signal for the transport. Every wait
 * goes through `guard`, so the deadline holds even for a transport that ignores the signal.
 */
class Deadline {
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout;
  private failure: LlmError | undefined;
  private readonly onCallerAbort = () => this.abort(abortedError());

  constructor(
    private readonly timeoutMs: number,
    private readonly callerSignal: AbortSignal | undefined,
    private readonly redact: (text: string) => string,
  ) {
    this.timer = setTimeout(() => this.abort(this.timeoutError()), timeoutMs);
    if (callerSignal?.aborted) this.abort(abortedError());
    else callerSignal?.addEventListener("abort", this.onCallerAbort, { once: true });
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  throwIfAborted(): void {
    if (this.failure) throw this.failure;
  }

  /** Waits for `promise`, failing with the deadline's error or a network error. */
  guard<T>(promise: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.failure) {
        promise.catch(() => {});
        reject(this.failure);
        return;
      }
      const onAbort = () => reject(this.failure);
      this.signal.addEventListener("abort", onAbort, { once: true });
      promise.then(
        (value) => {
          this.signal.removeEventListener("abort", onAbort);
          resolve(value);
        },
        (error: unknown) => {
          this.signal.removeEventListener("abort", onAbort);
          reject(this.failure ?? (error instanceof LlmError ? error : this.networkError(error)));
        },
      );
    });
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.callerSignal?.removeEventListener("abort", this.onCallerAbort);
  }

  private abort(failure: LlmError): void {
    if (this.failure) return;
    this.failure = failure;
    this.controller.abort(failure);
  }

  private timeoutError(): LlmError {
    return new LlmError(`LLM request timed out after ${this.timeoutMs} ms`, {
      code: "timeout",
      retryable: true,
    });
  }

  private networkError(cause: unknown): LlmError {
    const detail = cause instanceof Error ? this.redact(cause.message).slice(0, MAX_EXCERPT_CHARS) : "";
    return new LlmError(`LLM request failed${detail ? `: ${detail}` : ""}`, {
      code: "network",
      retryable: true,
      cause,
    });
  }
}

function abortedError(): LlmError {
  return new LlmError("LLM request was aborted", { code: "aborted", retryable: false });
}

/** Reads the answer chunk by chunk within the deadline, failing past MAX_RESPONSE_BYTES. */
class BodyReader {
  private readonly iterator: AsyncIterator<Uint8Array>;
  private bytes = 0;
  private finished = false;

  constructor(
    private readonly body: AsyncIterable<Uint8Array>,
    private readonly deadline: Deadline,
  ) {
    this.iterator = body[Symbol.asyncIterator]();
  }

  /** The next chunk, or null at the end of the answer. */
  async next(): Promise<Uint8Array | null> {
    if (this.finished) return null;
    const result = await this.deadline.guard(this.iterator.next());
    if (result.done) {
      this.finished = true;
      return null;
    }
    this.bytes += result.value.byteLength;
    if (this.bytes > MAX_RESPONSE_BYTES) {
      throw new LlmError(`LLM answer is larger than ${MAX_RESPONSE_BYTES} bytes`, {
        code: "response_too_large",
        retryable: false,
      });
    }
    return result.value;
  }

  /** Up to `limit` bytes as text; past the limit fails when `strict`, else is cut off. */
  async text(limit: number, strict: boolean): Promise<string> {
    const chunks: Uint8Array[] = [];
    let length = 0;
    for (let chunk = await this.next(); chunk !== null; chunk = await this.next()) {
      chunks.push(chunk);
      length += chunk.byteLength;
      if (length > limit) {
        if (strict) {
          throw new LlmError(`LLM answer is larger than ${limit} bytes`, {
            code: "response_too_large",
            retryable: false,
          });
        }
        break;
      }
    }
    return new TextDecoder().decode(Buffer.concat(chunks).subarray(0, limit));
  }

  /** Releases the connection when the answer was not read to its end. */
  close(): void {
    if (this.finished) return;
    this.finished = true;
    const destroyable = this.body as { destroy?: () => void };
    if (typeof destroyable.destroy === "function") {
      destroyable.destroy();
      return;
    }
    // Not awaited: return() waits for a pending next(), which may never settle.
    Promise.resolve(this.iterator.return?.()).catch(() => {});
  }
}

interface SseEvent {
  type: string;
  data: string;
}

const LF = 0x0a;
const CR = 0x0d;

/**
 * A server-sent-events parser over bytes (lines end in CRLF, LF or CR, even when split
 * across chunks; a line longer than MAX_LINE_BYTES fails). Lines are split before they are
 * decoded, so a multi-byte character split across chunks decodes whole.
 */
export class SseParser {
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private afterCr = false;
  private data: string[] = [];
  private type = "";
  private readonly decoder = new TextDecoder();

  /** The events completed by this chunk. */
  push(chunk: Uint8Array): SseEvent[] {
    const events: SseEvent[] = [];
    let start = 0;
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i];
      if (this.afterCr) {
        this.afterCr = false;
        if (byte === LF) {
          start = i + 1;
          continue;
        }
      }
      if (byte === LF || byte === CR) {
        this.append(chunk.subarray(start, i));
        this.line(events);
        this.afterCr = byte === CR;
        start = i + 1;
      }
    }
    // Copied: the transport may reuse its buffer for the next chunk.
    this.append(chunk.slice(start));
    return events;
  }

  /** At the end of the stream: a last line and event without their blank line still count. */
  end(): SseEvent[] {
    const events: SseEvent[] = [];
    if (this.pendingBytes > 0) this.line(events);
    this.dispatch(events);
    return events;
  }

  private append(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.pendingBytes += bytes.length;
    if (this.pendingBytes > MAX_LINE_BYTES) {
      throw new LlmError(`LLM stream has a line longer than ${MAX_LINE_BYTES} bytes`, {
        code: "response_too_large",
        retryable: false,
      });
    }
    this.pending.push(bytes);
  }

  private line(events: SseEvent[]): void {
    const text = this.decoder.decode(
      this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending),
    );
    this.pending = [];
    this.pendingBytes = 0;
    if (text === "") {
      this.dispatch(events);
      return;
    }
    if (text.startsWith(":")) return; // a comment: keep-alives
    const colon = text.indexOf(":");
    const field = colon === -1 ? text : text.slice(0, colon);
    let value = colon === -1 ? "" : text.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") this.data.push(value);
    else if (field === "event") this.type = value;
    // `id` and `retry` only matter to a reconnecting EventSource; unknown fields are ignored.
  }

  private dispatch(events: SseEvent[]): void {
    if (this.data.length > 0) events.push({ type: this.type || "message", data: this.data.join("\n") });
    this.data = [];
    this.type = "";
  }
}
