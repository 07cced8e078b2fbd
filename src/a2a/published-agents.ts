import type { Agent } from "../agents/agent.schemas.js";
import type { ExternalAgentService } from "../agents/agent.service.js";
import type { InvocationRow } from "../db/schema.js";
import { NotFoundError } from "../errors.js";
import type { LineageService } from "../lineage/lineage.service.js";
import { A2A_SYSTEM } from "./a2a-server-message.js";

/** Which agents and tasks an A2A caller may see: always within the caller's organization. */
export class PublishedAgents {
  constructor(
    private readonly agents: ExternalAgentService,
    private readonly lineage: LineageService,
  ) {}

  /**
   * The agent when it is active and published in the organization; otherwise undefined,
   * so an unknown, hidden or foreign agent all look the same.
   */
  async find(organizationId: string, agentId: string): Promise<Agent | undefined> {
    const agent = await orUndefined(this.agents.get(organizationId, agentId));
    return agent?.a2a.published && agent.status === "active" ? agent : undefined;
  }

  /**
   * The call behind an A2A task id: one made over A2A to this agent by the same
   * credential. Another caller's calls are not tasks this one can read.
   */
  async task(
    organizationId: string,
    agentId: string,
    principalId: string,
    taskId: string,
  ): Promise<InvocationRow | undefined> {
    const row = await orUndefined(this.lineage.get(organizationId, taskId));
    const visible =
      row?.externalAgentId === agentId &&
      row.externalSystem === A2A_SYSTEM &&
      row.principalId === principalId;
    return visible ? row : undefined;
  }
}

async function orUndefined<T>(lookup: Promise<T>): Promise<T | undefined> {
  try {
    return await lookup;
  } catch (error) {
    if (error instanceof NotFoundError) return undefined;
    throw error;
  }
}
