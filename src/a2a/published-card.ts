import type { Agent } from "../agents/agent.schemas.js";

/**
 * The A2A v0.3 Agent Card Steward serves for a published agent: the agent's identity
 * and skills, with Steward's URL and Steward's credentials — an A2A client never learns
 * where the agent really is.
 */

export interface PublishedSkill {
  id: string;
  name: string;
  description: string;
  tags: string[];
}

export interface PublishedCard {
  protocolVersion: "0.3.0";
  name: string;
  description: string;
  url: string;
  version: string;
  preferredTransport: "JSONRPC";
  capabilities: { streaming: true; pushNotifications: false };
  defaultInputModes: string[];
  defaultOutputModes: string[];
  skills: PublishedSkill[];
  securitySchemes: Record<string, { type: "http"; scheme: "bearer"; description: string }>;
  security: Array<Record<string, string[]>>;
}

const MODES = ["text/plain", "application/json"];

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The skills an imported card declared (kept in `config.a2a.skills`), when they are well formed. */
function importedSkills(agent: Agent): PublishedSkill[] | undefined {
  const a2a = agent.config.a2a;
  if (agent.platform !== "a2a" || !isObject(a2a) || !Array.isArray(a2a.skills)) return undefined;
  const skills = a2a.skills.filter(
    (skill): skill is PublishedSkill =>
      isObject(skill) &&
      typeof skill.id === "string" &&
      typeof skill.name === "string" &&
      typeof skill.description === "string" &&
      Array.isArray(skill.tags) &&
      skill.tags.every((tag) => typeof tag === "string"),
  );
  return skills.length > 0
    ? skills.map(({ id, name, description, tags }) => ({ id, name, description, tags }))
    : undefined;
}

/** One skill per capability; an agent with none offers one skill: itself. */
function skillsOf(agent: Agent): PublishedSkill[] {
  const imported = importedSkills(agent);
  if (imported) return imported;
  if (agent.capabilities.length === 0)
    return [{ id: "invoke", name: agent.name, description: agent.description ?? agent.name, tags: [] }];
  return agent.capabilities.map((capability) => ({
    id: capability,
    name: capability,
    description: `${agent.name}: ${capability}`,
    tags: [capability],
  }));
}

/** The card of `agent`, reached at `${publicUrl}/a2a/${agent.id}`. */
export function publishedCard(agent: Agent, publicUrl: string): PublishedCard {
  return {
    protocolVersion: "0.3.0",
    name: agent.name,
    description: agent.description ?? `${agent.name}, governed by Steward`,
    url: `${publicUrl}/a2a/${agent.id}`,
    version: String(agent.version),
    preferredTransport: "JSONRPC",
    capabilities: { streaming: true, pushNotifications: false },
    defaultInputModes: MODES,
    defaultOutputModes: MODES,
    skills: skillsOf(agent),
    securitySchemes: {
      steward: { type: "http", scheme: "bearer", description: "A Steward API key or JWT" },
    },
    security: [{ steward: [] }],
  };
}
