import { useState } from "react";
import { type Api, errorMessage } from "../../api/client";
import { useApi } from "../../auth/session";
import type { ManagedAgent, ProcessState } from "./managed-agent.types";

interface Action {
  label: string;
  className?: "secondary" | "danger";
  /** What the button explains on hover, when the label alone could mislead. */
  title?: string;
  run(api: Api): Promise<ManagedAgent>;
}

const processAction =
  (id: string, action: "start" | "stop" | "restart") =>
  async (api: Api): Promise<ManagedAgent> =>
    (await api.post<{ agent: ManagedAgent }>(`/agents/${encodeURIComponent(id)}/${action}`)).agent;

const markAs =
  (id: string, status: "running" | "stopped") =>
  (api: Api): Promise<ManagedAgent> =>
    api.put<ManagedAgent>(`/agents/${encodeURIComponent(id)}/status`, {
      status,
      reason: "set from the dashboard",
    });

/**
 * What the API lets a person do to the agent now. Steward runs a package's process
 * itself (start, stop, restart); any other agent runs elsewhere, and only its recorded
 * state can be changed. `process` undefined means not known: judged from the state.
 */
function actionsFor(agent: ManagedAgent, process: ProcessState | null | undefined): Action[] {
  const { id } = agent;
  if (agent.state === "deleted") return [];
  if (!agent.managed_process) {
    if (agent.state === "running")
      return [
        {
          label: "Mark stopped",
          className: "secondary",
          run: markAs(id, "stopped"),
          title: "Records the agent as stopped; it runs elsewhere, so nothing is signalled",
        },
      ];
    if (agent.state === "discovered") return [];
    return [
      {
        label: "Mark running",
        className: "secondary",
        run: markAs(id, "running"),
        title: "Records the agent as running; it runs elsewhere and normally says so by its first heartbeat",
      },
    ];
  }
  if (agent.state === "discovered")
    return [
      {
        label: "Register",
        // Steward gives the processes it runs their own fresh tokens: the credentials answered here are not needed.
        run: async (api) => (await api.post<{ agent: ManagedAgent }>("/agents", { agent_id: id })).agent,
      },
    ];
  const runningHere = process === undefined ? agent.state === "running" : process !== null;
  if (runningHere)
    return [
      { label: "Restart", className: "secondary", run: processAction(id, "restart") },
      { label: "Stop", className: "danger", run: processAction(id, "stop") },
    ];
  const start: Action = { label: "Start", run: processAction(id, "start") };
  // Marked running, but no process here (Steward restarted): it can be started again or marked stopped.
  return agent.state === "running"
    ? [start, { label: "Stop", className: "danger", run: processAction(id, "stop") }]
    : [start];
}

/** The lifecycle buttons of one agent, with the error of the last one pressed. */
export function AgentActions({
  agent,
  process,
  onChanged,
}: {
  agent: ManagedAgent;
  process?: ProcessState | null;
  onChanged(agent: ManagedAgent): void;
}) {
  const api = useApi();
  const [busy, setBusy] = useState<string>();
  const [error, setError] = useState<unknown>();
  const actions = actionsFor(agent, process);
  if (actions.length === 0) return null;
  const run = async (action: Action) => {
    setBusy(action.label);
    setError(undefined);
    try {
      onChanged(await action.run(api));
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(undefined);
    }
  };
  return (
    <div className="managed-actions">
      <div className="managed-actions-buttons">
        {actions.map((action) => (
          <button
            key={action.label}
            type="button"
            className={action.className}
            title={action.title}
            aria-label={`${action.label} ${agent.name}`}
            disabled={busy !== undefined}
            onClick={() => run(action)}
          >
            {busy === action.label ? `${action.label}…` : action.label}
          </button>
        ))}
      </div>
      {error !== undefined && (
        <p className="field-error" role="alert">
          {errorMessage(error)}
        </p>
      )}
    </div>
  );
}
