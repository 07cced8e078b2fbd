import { randomBytes } from "node:crypto";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { until } from "../helpers/eventually.js";
import { TEST_NATS_URL } from "../helpers/services.js";
import { startTestSteward, type TestSteward } from "../helpers/steward.js";

/** What managed agents report over NATS, on a NATS server other installations share. */
describe("managed agents' reports over a shared NATS", () => {
  const queueGroup = `steward-test-${randomBytes(4).toString("hex")}`;
  let t: TestSteward;
  let nats: NatsConnection;

  beforeAll(async () => {
    nats = await connect({ servers: TEST_NATS_URL });
    t = await startTestSteward("postgres", {
      NATS_URL: TEST_NATS_URL,
      STEWARD_AGENTS_NATS_QUEUE: queueGroup,
    });
  });
  afterAll(async () => {
    await t?.close();
    await nats?.drain();
  });

  it("gets every report in its own queue group, while another installation listens in the default one", async () => {
    // Another installation on the same server, in the default group: had Steward joined that
    // group too, the two would split the reports between them.
    const neighbour = nats.subscribe("agents.*.logs", { queue: "steward-lifecycle", callback: () => {} });
    try {
      const registered = await t.request({
        method: "POST",
        url: "/api/v1/agents",
        payload: {
          name: `reporter-${randomBytes(3).toString("hex")}`,
          version: "1.0.0",
          description: "reports over NATS",
          subscribed_topics: ["events.>"],
          findings_topic: "findings.reports",
        },
      });
      expect(registered.statusCode, registered.body).toBe(201);
      const id = registered.json().agent.id as string;
      for (let i = 0; i < 20; i++)
        nats.publish(
          `agents.${id}.logs`,
          JSON.stringify({ entries: [{ level: "info", message: `line ${i}` }] }),
        );
      const stored = async () =>
        (await t.request({ method: "GET", url: `/api/v1/agents/${id}/logs?limit=100` })).json().total;
      await until(async () => (await stored()) === 20);
      // Had Steward been in the default group, the neighbour would have taken some of them.
      expect(await stored()).toBe(20);
    } finally {
      neighbour.unsubscribe();
    }
  });
});
