import type { JobStreamEvent } from "./job-types";

export type Connection = "connecting" | "live" | "reconnecting" | "ended" | "stopped";

/** An LLM node's reply so far: its tokens joined as they arrived. */
export interface NodeOutput {
  node: string;
  text: string;
  tokens: number;
}

export interface JobStreamState {
  connection: Connection;
  outputs: NodeOutput[];
  /** Every event but tokens (too many to list; they grow `outputs`), in order. */
  timeline: JobStreamEvent[];
  /** The highest seq seen: where a reconnect resumes. */
  lastSeq: number;
  /** Why the stream stopped retrying ("stopped"): the API refused to show this job. */
  error?: unknown;
}

export type StreamAction =
  | { type: "reset" }
  | { type: "connection"; connection: Connection }
  | { type: "failed"; error: unknown }
  | { type: "event"; event: JobStreamEvent };

export const INITIAL_STREAM: JobStreamState = {
  connection: "connecting",
  outputs: [],
  timeline: [],
  lastSeq: 0,
};

function appendToken(outputs: NodeOutput[], node: string, token: string): NodeOutput[] {
  const index = outputs.findIndex((output) => output.node === node);
  if (index === -1) return [...outputs, { node, text: token, tokens: 1 }];
  return outputs.map((output, i) =>
    i === index ? { node, text: output.text + token, tokens: output.tokens + 1 } : output,
  );
}

/** Folds the stream's events into what the page shows; a repeated seq (after a reconnect) is dropped. */
export function streamReducer(state: JobStreamState, action: StreamAction): JobStreamState {
  switch (action.type) {
    case "reset":
      return INITIAL_STREAM;
    case "connection":
      return state.connection === "ended" ? state : { ...state, connection: action.connection };
    case "failed":
      return { ...state, connection: "stopped", error: action.error };
    case "event": {
      const { event } = action;
      if (event.seq <= state.lastSeq) return state;
      const next = { ...state, lastSeq: event.seq };
      if (event.event_type === "token")
        return {
          ...next,
          outputs: appendToken(state.outputs, String(event.data.node ?? ""), String(event.data.token ?? "")),
        };
      return {
        ...next,
        timeline: [...state.timeline, event],
        connection: event.event_type === "end" ? "ended" : state.connection,
      };
    }
  }
}
