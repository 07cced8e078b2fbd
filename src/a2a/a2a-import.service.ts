import { and, desc, eq, ne } from "drizzle-orm";
import type { Agent as Dispatcher } from "undici";
import type { Agent, CreateAgentBody } from "../agents/agent.schemas.js";
import type { ExternalAgentService } from "../agents/agent.service.js";
import type { RequestContext } from "../audit/audit.js";
import type { Db } from "../db/database.js";
import { externalAgentCards, externalAgents } from "../db/schema.js";
import { ValidationError } from "../errors.js";
import type { ImportAgentBody } from "./a2a-import.schemas.js";
import { type AgentCard, a2aSettings, authFromCard, jsonRpcEndpoint, parseAgentCard } from "./agent-card.js";
import { fetchAgentCard } from "./card-fetch.js";

export interface ImportResult {
  agent: Agent;
  /** False when the card refreshed an agent imported before. */
  created: boolean;
}

/**
 * Registers A2A agents from their Agent Cards: the card is fetched through the SSRF
 * guard (or sent inline), validated, and turned into an external agent with platform
 * `a2a`. Importing a card whose JSON-RPC endpoint an agent already has refreshes that
 * agent; every card is kept, newest last.
 */
export class A2aImportService {
  constructor(
    private readonly db: Db,
    private readonly agents: ExternalAgentService,
    private readonly dispatcher: Dispatcher,
  ) {}

  async import(
    organizationId: string,
    body: ImportAgentBody,
    context: RequestContext,
  ): Promise<ImportResult> {
    const { sourceUrl, card } = await this.readCard(body);
    const endpoint = jsonRpcEndpoint(card);
    const existing = await this.findByEndpoint(organizationId, endpoint);
    const agent = existing
      ? await this.agents.update(organizationId, existing.id, refreshed(card, body, existing.config), context)
      : await this.agents.create(organizationId, registration(card, endpoint, body), context);
    await this.db
      .insert(externalAgentCards)
      .values({ organizationId, agentId: agent.id, sourceUrl, card: card as Record<string, unknown> });
    return { agent, created: !existing };
  }

  /** The cards an agent was imported from, newest first. */
  async history(organizationId: string, agentId: string) {
    await this.agents.get(organizationId, agentId);
    return this.db
      .select()
      .from(externalAgentCards)
      .where(
        and(eq(externalAgentCards.organizationId, organizationId), eq(externalAgentCards.agentId, agentId)),
      )
      .orderBy(desc(externalAgentCards.id));
  }

  private async readCard(body: ImportAgentBody): Promise<{ sourceUrl: string | null; card: AgentCard }> {
    if ((body.card_url === undefined) === (body.card === undefined)) {
      throw new ValidationError([{ field: "card_url", message: "give either card_url or card, not both" }]);
    }
    if (body.card !== undefined) return { sourceUrl: null, card: parseAgentCard(body.card) };
    const fetched = await fetchAgentCard(body.card_url as string, this.dispatcher);
    return { sourceUrl: fetched.url, card: parseAgentCard(fetched.card) };
  }

  private async findByEndpoint(organizationId: string, endpoint: string) {
    const [row] = await this.db
      .select({ id: externalAgents.id, config: externalAgents.config })
      .from(externalAgents)
      .where(
        and(
          eq(externalAgents.organizationId, organizationId),
          eq(externalAgents.platform, "a2a"),
          eq(externalAgents.webhookUrl, endpoint),
          ne(externalAgents.status, "deleted"),
        ),
      )
      .limit(1);
    return row;
  }
}

/** A new agent: the card's identity, endpoint, skills and security, with the caller's settings. */
function registration(card: AgentCard, endpoint: string, body: ImportAgentBody): CreateAgentBody {
  const auth = authFromCard(card);
  const { card: _card, card_url: _url, config, ...settings } = body;
  return {
    ...settings,
    name: body.name ?? card.name,
    description: card.description,
    platform: "a2a",
    webhook_url: endpoint,
    auth_type: body.auth_type ?? auth.authType,
    auth_config: body.auth_type ? (body.auth_config ?? {}) : { ...auth.authConfig, ...body.auth_config },
    capabilities: skillIds(card),
    config: { ...config, a2a: a2aSettings(card) },
  };
}

/**
 * The card's description, skills and settings over an agent imported before. Its name,
 * credentials and governance stay as they are unless the caller sends new ones.
 */
function refreshed(card: AgentCard, body: ImportAgentBody, config: Record<string, unknown>) {
  const { card: _card, card_url: _url, config: given, ...settings } = body;
  return {
    ...settings,
    description: card.description,
    capabilities: skillIds(card),
    config: { ...config, ...given, a2a: a2aSettings(card) },
  };
}

function skillIds(card: AgentCard): string[] {
  return [...new Set(card.skills.map((skill) => skill.id))].slice(0, 100);
}
