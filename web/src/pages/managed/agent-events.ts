import { useEffect, useRef, useState } from "react";
import { useApi } from "../../auth/session";
import type { LifecycleEvent, ManagedAgent } from "./managed-agent.types";

/** The WebSocket's state as the status indicator shows it. */
export type Connection = "connecting" | "live" | "reconnecting";

const FIRST_RETRY_MS = 1000;
const MAX_RETRY_MS = 30_000;

/**
 * Follows GET /api/v1/agents/ws, reconnecting with backoff whenever the socket drops.
 * `onReady` runs on every (re)connection: events sent while disconnected are lost, so
 * that is when a page reads the state again.
 */
export function useAgentEvents(handlers: {
  onEvent(event: LifecycleEvent): void;
  onReady(): void;
}): Connection {
  const api = useApi();
  const [connection, setConnection] = useState<Connection>("connecting");
  const handlersRef = useRef(handlers);
  handlersRef.current = handlers;
  useEffect(() => {
    let socket: WebSocket | undefined;
    let retryTimer: ReturnType<typeof setTimeout> | undefined;
    let failures = 0;
    let unmounted = false;
    const connect = () => {
      socket = new WebSocket(api.socketUrl("/agents/ws"));
      socket.onmessage = (message) => {
        const event = parseMessage(message.data);
        if (!event) return;
        if (event.type === "ready") {
          failures = 0;
          setConnection("live");
          handlersRef.current.onReady();
        } else {
          handlersRef.current.onEvent(event);
        }
      };
      socket.onclose = () => {
        if (unmounted) return;
        setConnection("reconnecting");
        retryTimer = setTimeout(connect, Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** failures));
        failures += 1;
      };
    };
    connect();
    return () => {
      unmounted = true;
      clearTimeout(retryTimer);
      socket?.close();
    };
  }, [api]);
  return connection;
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
