import { useCallback, useEffect, useRef, useState } from "react";
import { useApi } from "../../auth/session";
import { probeClosedSocket } from "../socket-probe";
import type { LifecycleEvent, ManagedAgent } from "./managed-agent.types";

/** The WebSocket's state as the status indicator shows it. */
export type Connection = "connecting" | "live" | "reconnecting" | "stopped";

export interface AgentEvents {
  connection: Connection;
  /** Why live updates stopped ("stopped"): the API refused the credential's access to agents. */
  error?: unknown;
  /** Connects again after an error. */
  retry(): void;
}

const FIRST_RETRY_MS = 1000;
const MAX_RETRY_MS = 30_000;

/**
 * Follows GET /api/v1/agents/ws, reconnecting with backoff whenever the socket drops.
 * `onReady` runs on every (re)connection: events sent while disconnected are lost, so
 * that is when a page reads the state again. A socket closed before its first message
 * may have been refused, so the REST API is asked why before retrying: a 401 signs out,
 * a 403 or 404 stops the retries and becomes `error`.
 */
export function useAgentEvents(handlers: {
  onEvent(event: LifecycleEvent): void;
  onReady(): void;
}): AgentEvents {
  const api = useApi();
  const [state, setState] = useState<{ connection: Connection; error?: unknown }>({
    connection: "connecting",
  });
  const [generation, setGeneration] = useState(0);
  const handlersRef = useRef(handlers);
  handlersRef.current = handlers;
  // biome-ignore lint/correctness/useExhaustiveDependencies: a new generation is a retry
  useEffect(() => {
    let socket: WebSocket | undefined;
    let retryTimer: ReturnType<typeof setTimeout> | undefined;
    let failures = 0;
    let unmounted = false;
    const reconnect = () => {
      retryTimer = setTimeout(connect, Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** failures));
      failures += 1;
    };
    const connect = () => {
      let heard = false;
      socket = new WebSocket(api.socketUrl("/agents/ws"));
      socket.onmessage = (message) => {
        heard = true;
        const event = parseMessage(message.data);
        if (!event) return;
        if (event.type === "ready") {
          failures = 0;
          setState({ connection: "live" });
          handlersRef.current.onReady();
        } else {
          handlersRef.current.onEvent(event);
        }
      };
      socket.onclose = () => {
        if (unmounted) return;
        setState({ connection: "reconnecting" });
        if (heard) return reconnect();
        void probeClosedSocket(() => api.get("/agents", { limit: 1 })).then((error) => {
          if (unmounted) return;
          if (error === undefined) reconnect();
          else setState({ connection: "stopped", error });
        });
      };
    };
    setState({ connection: "connecting" });
    connect();
    return () => {
      unmounted = true;
      clearTimeout(retryTimer);
      socket?.close();
    };
  }, [api, generation]);
  const retry = useCallback(() => setGeneration((n) => n + 1), []);
  return { ...state, retry };
}

function parseMessage(data: unknown): LifecycleEvent | { type: "ready" } | undefined {
  if (typeof data !== "string") return undefined;
  try {
    const message = JSON.parse(data) as { type?: unknown };
    return typeof message.type === "string" ? (message as LifecycleEvent | { type: "ready" }) : undefined;
  } catch {
    return undefined;
  }
}

/** The agent as it is after `event`, mirroring what the server changed before publishing it. */
export function applyEvent(agent: ManagedAgent, event: LifecycleEvent): ManagedAgent {
  if (event.agent_id !== agent.id) return agent;
  switch (event.type) {
    case "status":
      return {
        ...agent,
        state: event.to,
        state_changed_at: event.at,
        // The server forgets a stopped agent's health in the same change, without a health event.
        ...(event.to === "stopped" ? { health: "unknown" as const } : {}),
      };
    case "heartbeat":
      return {
        ...agent,
        health: "healthy",
        last_heartbeat_at: event.at,
        last_heartbeat: { ...agent.last_heartbeat, status: event.status, uptime: event.uptime },
      };
    case "health":
      return { ...agent, health: event.health };
    case "config":
      return { ...agent, config_version: event.version };
    default:
      return agent;
  }
}
