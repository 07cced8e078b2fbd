import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startA2aAgent } from "../helpers/a2a-agent.js";
import { type MockAgent, startMockAgent } from "../helpers/mock-agent.js";
import { invokeEnv, startTestSteward, type TestSteward } from "../helpers/steward.js";

/** A version 0.3 Agent Card for an agent at `base`, its JSON-RPC endpoint at /rpc. */
function cardFor(base: string, overrides: Record<string, unknown> = {}) {
  return {
    protocolVersion: "0.3.0",
    name: "Summarizer",
    description: "Summarizes documents",
    url: `${base}/rpc`,
    version: "1.0.0",
    preferredTransport: "JSONRPC",
    capabilities: { streaming: true },
    defaultInputModes: ["text/plain"],
    defaultOutputModes: ["text/plain"],
    skills: [
      { id: "summarize", name: "Summarize", description: "Summarize a document", tags: ["text"] },
      { id: "translate", name: "Translate", description: "Translate a document", tags: ["text"] },
    ],
    securitySchemes: { bearer: { type: "http", scheme: "bearer" } },
    security: [{ bearer: [] }],
    ...overrides,
  };
}

let t: TestSteward;
/** Serves whatever card the test sets, at every path. */
let cardServer: MockAgent;
let card: Record<string, unknown>;
let base: string;

beforeAll(async () => {
  t = await startTestSteward("postgres", invokeEnv());
  cardServer = await startMockAgent(() => ({ body: card }));
  base = new URL(cardServer.url).origin;
});

afterAll(async () => {
  await t?.close();
  await cardServer?.close();
});

const importCard = (payload: Record<string, unknown>) =>
  t.request({ method: "POST", url: "/api/v1/external-agents/import", payload });

const cardsOf = async (id: string) =>
  (await t.request({ method: "GET", url: `/api/v1/external-agents/${id}/cards` })).json().items as Array<{
    source_url: string | null;
    card: Record<string, unknown>;
  }>;

describe("importing an A2A agent from its Agent Card", () => {
  it("fetches the card from the well-known path and registers an a2a agent from it", async () => {
    card = cardFor(base);
    const response = await importCard({ card_url: base, auth_config: { token: "a2a-token-0123456789" } });
    expect(response.statusCode, response.body).toBe(201);
    expect(cardServer.requests.at(-1)?.path).toBe("/.well-known/agent-card.json");
    const agent = response.json();
    expect(agent).toMatchObject({
      name: "Summarizer",
      description: "Summarizes documents",
      platform: "a2a",
      webhook_url: `${base}/rpc`,
      auth_type: "bearer_token",
      auth_config: { token: "****6789" },
      capabilities: ["summarize", "translate"],
      config: {
        a2a: {
          protocol_version: "0.3.0",
          streaming: true,
          transports: [{ transport: "JSONRPC", url: `${base}/rpc` }],
        },
      },
    });
    expect(agent.config.a2a.skills.map((skill: { id: string }) => skill.id)).toEqual([
      "summarize",
      "translate",
    ]);
    expect(await cardsOf(agent.id)).toEqual([
      expect.objectContaining({ source_url: `${base}/.well-known/agent-card.json`, card }),
    ]);
  });

  it("refreshes the agent on re-import, keeping its name, credentials and the earlier card", async () => {
    card = cardFor(base, { name: "Refreshed", url: `${base}/rpc-refresh` });
    const first = (
      await importCard({ card_url: base, name: "my summarizer", auth_config: { token: "t-1" } })
    ).json();
    card = cardFor(base, {
      name: "Refreshed",
      url: `${base}/rpc-refresh`,
      description: "Summarizes and cites",
      skills: [{ id: "cite", name: "Cite", description: "Cite sources", tags: [] }],
    });
    const again = await importCard({ card_url: `${base}/.well-known/agent-card.json` });
    expect(again.statusCode, again.body).toBe(200);
    expect(again.json()).toMatchObject({
      id: first.id,
      name: "my summarizer",
      description: "Summarizes and cites",
      capabilities: ["cite"],
      auth_config: { token: "****" },
    });
    const history = await cardsOf(first.id);
    expect(history.map((entry) => entry.card.description)).toEqual([
      "Summarizes and cites",
      "Summarizes documents",
    ]);
  });

  it("takes the card inline, and maps an API key in a header onto auth_config", async () => {
    const response = await importCard({
      card: cardFor("https://agents.example.com", {
        name: "Inline",
        securitySchemes: { key: { type: "apiKey", in: "header", name: "X-Agent-Key" } },
        security: [{ key: [] }],
      }),
      auth_config: { key: "k-0123456789abcdef" },
    });
    expect(response.statusCode, response.body).toBe(201);
    expect(response.json()).toMatchObject({
      auth_type: "api_key",
      auth_config: { header_name: "X-Agent-Key", key: "****cdef" },
    });
    expect(await cardsOf(response.json().id)).toEqual([expect.objectContaining({ source_url: null })]);
  });

  it("publishes the agent through Steward when asked, and withdraws it on update", async () => {
    const response = await importCard({
      card: cardFor("https://published.example.com", { name: "Published", security: [] }),
      a2a: { published: true },
    });
    expect(response.statusCode, response.body).toBe(201);
    expect(response.json().a2a).toEqual({ published: true });
    const withdrawn = await t.request({
      method: "PATCH",
      url: `/api/v1/external-agents/${response.json().id}`,
      payload: { a2a: { published: false } },
    });
    expect(withdrawn.json().a2a).toEqual({ published: false });
  });

  it("refuses a card that is not valid, naming each field", async () => {
    const { skills: _skills, ...withoutSkills } = cardFor(base);
    const response = await importCard({ card: { ...withoutSkills, url: "" } });
    expect(response.statusCode).toBe(400);
    const fields = response.json().error.details.errors.map((error: { field: string }) => error.field);
    expect(fields).toEqual(expect.arrayContaining(["card.skills", "card.url"]));
  });

  it("asks for the secret the card's security scheme needs", async () => {
    const response = await importCard({
      card: cardFor("https://no-token.example.com", { name: "No token" }),
    });
    expect(response.statusCode).toBe(400);
    expect(response.json().error.details.errors).toEqual([
      expect.objectContaining({ field: "auth_config.token" }),
    ]);
  });

  it("refuses a card Steward cannot call or authenticate to", async () => {
    const grpcOnly = await importCard({
      card: cardFor("https://grpc.example.com", { name: "gRPC only", preferredTransport: "GRPC" }),
    });
    expect(grpcOnly.json().error.details.errors).toEqual([
      expect.objectContaining({ field: "card.preferredTransport" }),
    ]);
    const oidc = await importCard({
      card: cardFor("https://oidc.example.com", {
        name: "OIDC",
        securitySchemes: { sso: { type: "openIdConnect", openIdConnectUrl: "https://id.example.com" } },
        security: [{ sso: [] }],
      }),
    });
    expect(oidc.json().error.details.errors).toEqual([
      expect.objectContaining({ field: "card.securitySchemes.sso" }),
    ]);
  });

  it("says why a card could not be fetched, and wants card_url or card", async () => {
    card = cardFor(base);
    cardServer.answer(() => ({ status: 404, body: { error: "none here" } }));
    const missing = await importCard({ card_url: `${base}/elsewhere` });
    cardServer.answer(() => ({ body: card }));
    expect(missing.json().error.details.errors).toEqual([
      { field: "card_url", message: `answered HTTP 404 at ${base}/elsewhere/.well-known/agent-card.json` },
    ]);
    const neither = await importCard({});
    expect(neither.json().error.details.errors).toEqual([expect.objectContaining({ field: "card_url" })]);
  });
});

describe("an agent imported from a real A2A agent's card", () => {
  it("is called over A2A at the endpoint its card names, with the token given at import, tasks followed to the end", async () => {
    const agent = await startA2aAgent();
    try {
      const imported = await importCard({
        card_url: agent.baseUrl,
        auth_config: { token: "sdk-agent-token" },
      });
      expect(imported.statusCode, imported.body).toBe(201);
      const { id } = imported.json();
      const answer = await t.request({
        method: "POST",
        url: `/api/v1/external-agents/${id}/invoke`,
        payload: { input: "hi" },
      });
      expect(answer.statusCode, answer.body).toBe(200);
      expect(answer.json().output).toBe("echo: hi");
      const call = agent.requests.find((request) => request.path === new URL(agent.rpcUrl).pathname);
      expect(call?.headers.authorization).toBe("Bearer sdk-agent-token");

      // A long-running task: answered at once as submitted, followed until it completes.
      const task = await t.request({
        method: "POST",
        url: `/api/v1/external-agents/${id}/invoke`,
        payload: { input: "slow report" },
      });
      expect(task.statusCode, task.body).toBe(200);
      expect(task.json().output).toBe("done: slow report");
    } finally {
      await agent.close();
    }
  });
});

describe("the SSRF guard on card_url", () => {
  it("refuses a card on a private address without asking it", async () => {
    const strict = await startTestSteward("postgres", invokeEnv({ STEWARD_ALLOW_PRIVATE_NETWORKS: "" }));
    try {
      const before = cardServer.requests.length;
      const response = await strict.request({
        method: "POST",
        url: "/api/v1/external-agents/import",
        payload: { card_url: base },
      });
      expect(response.statusCode).toBe(400);
      expect(response.json().error.details.errors).toEqual([
        { field: "card_url", message: "is refused by the SSRF guard" },
      ]);
      expect(cardServer.requests.length).toBe(before);
    } finally {
      await strict.close();
    }
  });
});
