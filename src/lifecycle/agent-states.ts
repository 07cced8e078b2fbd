/** The lifecycle of a managed agent and the only transitions between its states. */

export const AGENT_STATES = ["discovered", "registered", "running", "stopped", "failed", "deleted"] as const;
export type AgentState = (typeof AGENT_STATES)[number];

const TRANSITIONS: Record<AgentState, readonly AgentState[]> = {
  discovered: ["registered", "deleted"],
  registered: ["running", "deleted"],
  running: ["stopped", "failed", "deleted"],
  stopped: ["running", "deleted"],
  failed: ["running", "deleted"],
  deleted: [],
};

/** The states `from` may move to. */
export function allowedTransitions(from: AgentState): readonly AgentState[] {
  return TRANSITIONS[from];
}

export function canTransition(from: AgentState, to: AgentState): boolean {
  return TRANSITIONS[from].includes(to);
}

/** Health follows heartbeats, apart from the lifecycle state. */
export const AGENT_HEALTH = ["unknown", "healthy", "unhealthy"] as const;
export type AgentHealth = (typeof AGENT_HEALTH)[number];
