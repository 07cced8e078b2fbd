import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { until } from "../helpers/eventually.js";
import { sseEvents } from "../helpers/jobs.js";
import { type MockAgent, startMockAgent } from "../helpers/mock-agent.js";
import { type OpenAiStandIn, startOpenAiStandIn } from "../helpers/openai-stand-in.js";
import { TEST_REDIS_URL } from "../helpers/services.js";
import { invokeEnv, registerAgent, startTestSteward, type TestSteward } from "../helpers/steward.js";

/** Jobs whose nodes reach outside: an external agent through the governed gateway, and an LLM. */
describe("job nodes that reach outside", () => {
  let t: TestSteward;
  let agent: MockAgent;
  let llm: OpenAiStandIn;
  let agentId: string;

  beforeAll(async () => {
    agent = await startMockAgent(() => ({ body: { result: { verdict: "benign" } } }));
    llm = await startOpenAiStandIn({ reply: "All clear, nothing to see" });
    t = await startTestSteward(
      "postgres",
      invokeEnv({ OPENAI_BASE_URL: llm.url, OPENAI_API_KEY: "sk-test-llm" }),
    );
    agentId = await registerAgent(t, `${agent.url}/scan`);
  });
  afterAll(async () => {
    await t?.close();
    await agent?.close();
    await llm?.close();
  });

  const finished = async (id: string) => {
    await until(async () => {
      const status = (await t.request({ method: "GET", url: `/api/v1/jobs/${id}` })).json().status;
      return status === "completed" || status === "failed";
    });
    return (await t.request({ method: "GET", url: `/api/v1/jobs/${id}` })).json();
  };

  it("calls an external agent through the gateway, once, with the job in its lineage", async () => {
    const submitted = await t.request({
      method: "POST",
      url: "/api/v1/jobs",
      payload: {
        agent_definition: {
          name: "scan",
          nodes: [{ id: "scan", type: "external_agent", agent_id: agentId, input: "input.file" }],
          edges: [
            { from: "__start__", to: "scan" },
            { from: "scan", to: "__end__" },
          ],
        },
        input_payload: { file: "report.pdf" },
      },
    });
    const job = await finished(submitted.json().id);
    expect(job).toMatchObject({ status: "completed", result: { verdict: "benign" } });
    expect(agent.requests).toHaveLength(1);
    expect(agent.requests[0]?.body.input).toBe("report.pdf");
    const invocations = (
      await t.request({ method: "GET", url: `/api/v1/external-agents/${agentId}/invocations` })
    ).json();
    expect(invocations.items).toEqual([expect.objectContaining({ status: "success" })]);
  });

  it("calls the agent once per visit when a loop passes through its node", async () => {
    const before = agent.requests.length;
    const submitted = await t.request({
      method: "POST",
      url: "/api/v1/jobs",
      payload: {
        agent_definition: {
          name: "scan-three",
          nodes: [
            { id: "count", type: "transform", expression: "{'n': $exists(count.n) ? count.n + 1 : 1}" },
            { id: "scan", type: "external_agent", agent_id: agentId, input: "'page ' & $string(count.n)" },
          ],
          edges: [
            { from: "__start__", to: "count" },
            { from: "count", to: "scan" },
            { from: "scan", to: "count", when: "count.n < 3" },
            { from: "scan", to: "__end__" },
          ],
        },
        input_payload: {},
      },
    });
    expect(await finished(submitted.json().id)).toMatchObject({ status: "completed" });
    expect(agent.requests.slice(before).map((request) => request.body.input)).toEqual([
      "page 1",
      "page 2",
      "page 3",
    ]);
  });

  it("streams an LLM node's tokens in order, then the end event", async () => {
    const submitted = await t.request({
      method: "POST",
      url: "/api/v1/jobs",
      payload: {
        agent_definition: {
          name: "summarize",
          nodes: [{ id: "say", type: "llm", model: "gpt-test", prompt: "'Summarize: ' & input.text" }],
          edges: [
            { from: "__start__", to: "say" },
            { from: "say", to: "__end__" },
          ],
        },
        input_payload: { text: "logs" },
      },
    });
    const id = submitted.json().id;
    const job = await finished(id);
    expect(job).toMatchObject({ status: "completed", result: { content: "All clear, nothing to see" } });
    expect(llm.requests.at(-1)?.headers.authorization).toBe("Bearer sk-test-llm");
    const stream = await t.request({ method: "GET", url: `/api/v1/jobs/${id}/stream` });
    const events = sseEvents(stream.body);
    const tokens = events.filter((event) => event.event_type === "token").map((event) => event.data.token);
    expect(tokens.join("")).toBe("All clear, nothing to see");
    expect(tokens.length).toBeGreaterThan(1);
    expect(events.at(-1)?.event_type).toBe("end");
  });

  it("publishes the tokens in order and the end event on the job's Redis channel", async () => {
    const jobId = `job_redis_${randomBytes(6).toString("hex")}`;
    const subscriber = new Redis(TEST_REDIS_URL);
    const received: Array<{ event_type: string; data: { token?: string }; seq: number }> = [];
    subscriber.on("message", (_channel: string, message: string) => received.push(JSON.parse(message)));
    await subscriber.subscribe(`langgraph:stream:${jobId}`);
    llm.setTokenDelay(5);
    try {
      const submitted = await t.request({
        method: "POST",
        url: "/api/v1/jobs",
        payload: {
          job_id: jobId,
          agent_definition: {
            name: "summarize",
            nodes: [{ id: "say", type: "llm", model: "gpt-test", prompt: "input.text" }],
            edges: [
              { from: "__start__", to: "say" },
              { from: "say", to: "__end__" },
            ],
          },
          input_payload: { text: "logs" },
        },
      });
      expect(submitted.statusCode).toBe(202);
      await until(() => received.some((event) => event.event_type === "end"));
    } finally {
      llm.setTokenDelay(0);
      subscriber.disconnect();
    }
    const tokens = received.filter((event) => event.event_type === "token").map((event) => event.data.token);
    expect(tokens).toEqual(["All", " clear,", " nothing", " to", " see"]);
    expect(received.at(-1)).toMatchObject({ event_type: "end", data: {} });
    const seqs = received.map((event) => event.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(new Set(seqs).size).toBe(seqs.length);
  });
});
