import { until } from "../helpers/eventually.js";
import type { TestSteward } from "../helpers/steward.js";

/**
 * Concurrent invoke load for chaos tests: a few workers send invokes one after another
 * (with a pause, so the load stays moderate) while the test breaks something, and every
 * request is kept with the phase it was sent and answered in, its status and body.
 */

/** What one invoke came back with. */
export interface InvokeAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * Sends one invoke. `signal` aborts it once the load's bound has passed where the
 * transport can cancel it (a fetch); an in-process inject cannot be (see injectSender).
 */
export type InvokeSender = (signal: AbortSignal) => Promise<InvokeAnswer>;

/** One request of the load and how it ended. */
export interface LoadOutcome {
  /** The phase when it was sent, and when it ended. */
  sentIn: string;
  endedIn: string;
  sentAt: number;
  endedAt: number;
  /** Undefined when no answer came within the bound or the connection failed; `error` says which. */
  answer?: InvokeAnswer;
  error?: string;
}

export interface InvokeLoad {
  /** Labels the requests sent from now on ("redis down", say). */
  phase(name: string): void;
  /** Every request that has ended so far, in the order they ended. */
  readonly outcomes: readonly LoadOutcome[];
  /**
   * Stops sending and waits for the requests in flight, including those already past the
   * bound (for one bound more at most); answers every outcome.
   */
  stop(): Promise<LoadOutcome[]>;
}

export interface LoadOptions {
  /** Requests in flight at once. */
  concurrency: number;
  /** Pause of each worker between its requests. */
  pauseMs: number;
  /** A request not answered within this long counts as unanswered (and is aborted where the sender can). */
  boundMs: number;
  /** Label of the first phase. */
  phase: string;
}

export function startInvokeLoad(send: InvokeSender, options: LoadOptions): InvokeLoad {
  let phase = options.phase;
  let running = true;
  const outcomes: LoadOutcome[] = [];
  /** Sends not yet settled, past the bound or not: what they still do must not outlive the load. */
  const inFlight = new Set<Promise<unknown>>();

  async function once(): Promise<void> {
    const sentIn = phase;
    const sentAt = Date.now();
    const signal = AbortSignal.timeout(options.boundMs);
    const ended = (result: { answer?: InvokeAnswer; error?: string }) =>
      outcomes.push({ sentIn, sentAt, endedIn: phase, endedAt: Date.now(), ...result });
    const sending = send(signal);
    const settled: Promise<unknown> = sending.then(
      () => inFlight.delete(settled),
      () => inFlight.delete(settled),
    );
    inFlight.add(settled);
    try {
      ended({ answer: await withinBound(sending, signal) });
    } catch (error) {
      ended({ error: describeFailure(error) });
    }
  }

  async function worker(): Promise<void> {
    while (running) {
      await once();
      await new Promise((resolve) => setTimeout(resolve, options.pauseMs));
    }
  }

  const workers = Array.from({ length: options.concurrency }, worker);
  return {
    phase(name) {
      phase = name;
    },
    outcomes,
    async stop() {
      running = false;
      await Promise.all(workers);
      // A request past the bound was given up on, not ended: an inject still holds its
      // budget reservation, say. A test checking such state after stop() must find it settled.
      await until(() => inFlight.size === 0, options.boundMs);
      return outcomes;
    },
  };
}

/** `work`, or a rejection once `signal` aborts: a sender that ignores the signal still cannot hang the load. */
function withinBound<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  const aborted = new Promise<never>((_, reject) =>
    signal.addEventListener("abort", () => reject(new Error("no answer within the bound")), { once: true }),
  );
  return Promise.race([work, aborted]);
}

/** "fetch failed (ECONNREFUSED)": the message, and the network error behind it if any. */
function describeFailure(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error.cause as { code?: unknown } | undefined)?.code;
  return typeof code === "string" ? `${error.message} (${code})` : error.message;
}

const INVOKE_BODY = JSON.stringify({ input: "chaos" });

/**
 * Invokes `agentId` on an in-process test Steward (Fastify inject) as its admin. The abort
 * signal goes unused: an injected request has no connection to drop, and aborting it would
 * not stop its route handler, which runs on to its end; the load's stop() waits for it.
 */
export function injectSender(steward: TestSteward, agentId: string): InvokeSender {
  return async () => {
    const response = await steward.request({
      method: "POST",
      url: `/api/v1/external-agents/${agentId}/invoke`,
      headers: { "content-type": "application/json" },
      payload: INVOKE_BODY,
    });
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(response.headers)) headers[name] = String(value);
    return { status: response.statusCode, headers, body: response.body };
  };
}

/** Invokes `agentId` over HTTP at `baseUrl` (a spawned Steward) with `headers`. */
export function httpSender(baseUrl: string, headers: Record<string, string>, agentId: string): InvokeSender {
  return async (signal) => {
    const response = await fetch(`${baseUrl}/api/v1/external-agents/${agentId}/invoke`, {
      method: "POST",
      headers,
      body: INVOKE_BODY,
      signal,
    });
    return {
      status: response.status,
      headers: Object.fromEntries(response.headers),
      body: await response.text(),
    };
  };
}

/** An invoke answer's body: a 200's result or Steward's error envelope; {} when not JSON. */
function bodyOf(answer: InvokeAnswer): {
  invocation_id?: string;
  error?: { code?: string; details?: { invocation_id?: string } };
} {
  try {
    return JSON.parse(answer.body) ?? {};
  } catch {
    return {};
  }
}

/** The invocation an answer names: `invocation_id` of a 200, `error.details.invocation_id` of an error. */
export function invocationIdOf(answer: InvokeAnswer): string | undefined {
  const body = bodyOf(answer);
  return body.invocation_id ?? body.error?.details?.invocation_id;
}

/** The error code of an error answer ("SERVICE_UNAVAILABLE"). */
export function errorCodeOf(answer: InvokeAnswer): string | undefined {
  return bodyOf(answer).error?.code;
}

/** "200×12, 503×4, no answer×1": what a load got, for assertion messages. */
export function statusSummary(outcomes: readonly LoadOutcome[]): string {
  const counts = new Map<string, number>();
  for (const outcome of outcomes) {
    const key = outcome.answer ? String(outcome.answer.status) : "no answer";
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].map(([key, count]) => `${key}×${count}`).join(", ");
}
