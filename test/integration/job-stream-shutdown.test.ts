import { afterAll, expect, it } from "vitest";
import { until } from "../helpers/eventually.js";
import { type MockAgent, startMockAgent } from "../helpers/mock-agent.js";
import { serveOnLoopback, startTestSteward } from "../helpers/steward.js";

let agent: MockAgent | undefined;
afterAll(async () => {
  await agent?.close();
});

it("ends a job's open SSE stream when Steward shuts down, rather than waiting for its reader", async () => {
  agent = await startMockAgent(() => ({ hang: true }));
  const t = await startTestSteward("postgres", {
    STEWARD_ALLOW_PRIVATE_NETWORKS: "127.0.0.1/32",
    // The job's node hangs until this runs out; the stream would otherwise stay open far longer.
    STEWARD_INVOKE_TIMEOUT_MS: "2000",
  });
  const baseUrl = await serveOnLoopback(t);
  const submitted = await t.request({
    method: "POST",
    url: "/api/v1/jobs",
    payload: {
      agent_definition: {
        name: "stuck",
        nodes: [{ id: "wait", type: "http", url: agent.url }],
        edges: [
          { from: "__start__", to: "wait" },
          { from: "wait", to: "__end__" },
        ],
      },
      input_payload: {},
    },
  });
  const id = submitted.json().id;
  const response = await fetch(`${baseUrl}/api/v1/jobs/${id}/stream`, {
    headers: { authorization: `Bearer ${t.adminKey}` },
  });
  expect(response.status).toBe(200);
  const reader = response.body?.getReader();
  let received = "";
  let ended = false;
  const reading = (async () => {
    for (;;) {
      const chunk = await reader?.read();
      if (!chunk || chunk.done) break;
      received += new TextDecoder().decode(chunk.value);
    }
    ended = true;
  })();
  await until(() => received.includes("http_call"));
  await t.close();
  await reading;
  expect(ended).toBe(true);
  expect(received).toContain("event: node_start");
  // Ended by the shutdown, not by the job: its reader comes back later with Last-Event-ID.
  expect(received).not.toContain("event: end");
});
