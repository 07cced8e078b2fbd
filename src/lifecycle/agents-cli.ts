import type { ClientConfig } from "../config.js";

/** `steward agents …`: commands that act on a running Steward through its API (it owns the processes). */
export const AGENTS_USAGE = `  agents discover            Scan the agents directory now (STEWARD_AGENTS_DIR of the server)
  agents start|stop|restart ID
                             Run, stop or restart a managed agent's local process
      (these call the running server at STEWARD_URL, default http://127.0.0.1:PORT, with STEWARD_API_KEY)`;

const ACTIONS = ["start", "stop", "restart"] as const;

export class AgentsCommandError extends Error {}

/** Runs one `agents` subcommand and returns what to print. */
export async function runAgentsCommand(client: ClientConfig, args: string[]): Promise<string> {
  const [action, id] = args;
  if (action === "discover") {
    const report = (await call(client, "POST", "/api/v1/agents/discover")) as {
      agents: Array<{ id: string; name: string; version: string; created: boolean }>;
      problems: Array<{ file: string; reason: string }>;
    };
    const lines = report.agents.map(
      (agent) => `  ${agent.created ? "new " : "    "}${agent.id}  ${agent.name} ${agent.version}`,
    );
    const problems = report.problems.map((problem) => `  refused ${problem.file}: ${problem.reason}`);
    return [`${report.agents.length} agent package(s):`, ...lines, ...problems].join("\n");
  }
  if (!ACTIONS.includes(action as (typeof ACTIONS)[number]) || !id)
    throw new AgentsCommandError("usage: steward agents discover | steward agents start|stop|restart ID");
  const result = (await call(client, "POST", `/api/v1/agents/${encodeURIComponent(id)}/${action}`)) as {
    agent: { id: string; state: string };
    process: { pid: number | null } | null;
  };
  const pid = result.process?.pid ? ` (pid ${result.process.pid})` : "";
  return `${result.agent.id}: ${result.agent.state}${pid}`;
}

async function call(client: ClientConfig, method: string, path: string): Promise<unknown> {
  let response: Response;
  try {
    response = await fetch(`${client.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${client.apiKey}` },
    });
  } catch (error) {
    throw new AgentsCommandError(`cannot reach Steward at ${client.url}: ${(error as Error).message}`);
  }
  const body = (await response.json().catch(() => ({}))) as { error?: { message?: string } };
  if (!response.ok)
    throw new AgentsCommandError(`${response.status}: ${body.error?.message ?? response.statusText}`);
  return body;
}
