import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { until } from "../helpers/eventually.js";
import { oneNodeGraph } from "../helpers/jobs.js";
import { type MockAgent, startMockAgent } from "../helpers/mock-agent.js";
import { freePort } from "../helpers/ports.js";
import { type StewardProcess, spawnSteward } from "../helpers/steward-process.js";

/**
 * The embedded default killed while it runs a job a CloudEvent on `POST /` started: no
 * broker holds the job, so the restarted process picks it up and finishes it.
 */
describe("a CloudEvent job on the embedded default, across SIGKILL", () => {
  const processes: StewardProcess[] = [];
  let dataDir: string | undefined;
  let agent: MockAgent | undefined;

  afterAll(async () => {
    for (const steward of processes) await steward.kill("SIGKILL");
    await agent?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it("is finished by the restarted process instead of staying running", async () => {
    // The first call never answers: the process is killed while it waits.
    agent = await startMockAgent((_request, index) =>
      index === 0 ? { hang: true } : { body: { ok: true } },
    );
    dataDir = await mkdtemp(join(tmpdir(), "steward-embedded-job-"));
    const adminKey = `sk_live_${randomBytes(24).toString("hex")}`;
    const port = await freePort();
    const env = {
      STEWARD_DATA_DIR: dataDir,
      STEWARD_BOOTSTRAP_ADMIN_KEY: adminKey,
      STEWARD_ENCRYPTION_KEY: randomBytes(32).toString("base64"),
      STEWARD_ALLOW_PRIVATE_NETWORKS: "127.0.0.1/32",
      HOST: "127.0.0.1",
      PORT: String(port),
      LOG_LEVEL: "info",
    };
    const base = `http://127.0.0.1:${port}`;
    const headers = { authorization: `Bearer ${adminKey}` };
    const start = async () => {
      const steward = spawnSteward("serve", env);
      processes.push(steward);
      await steward.waitForOutput(/Server listening/);
      return steward;
    };

    const first = await start();
    const jobId = `ce-crash-${randomBytes(3).toString("hex")}`;
    // Its caller loses the answer with the process (checked from the start, so the rejection is never unhandled).
    const answerLost = expect(
      fetch(`${base}/`, {
        method: "POST",
        headers: {
          ...headers,
          "ce-specversion": "1.0",
          "ce-id": jobId,
          "ce-source": "test",
          "ce-type": "steward.job.execute",
          "content-type": "application/json",
        },
        body: JSON.stringify({
          job_id: jobId,
          trace_id: randomBytes(16).toString("hex"),
          agent_definition: oneNodeGraph("call-once", { id: "call", type: "http", url: agent.url }),
          input_payload: {},
        }),
      }),
    ).rejects.toThrow();
    await until(() => (agent as MockAgent).requests.length === 1, 30_000);
    await first.kill("SIGKILL");
    await answerLost;

    await start();
    const job = async () =>
      (await (await fetch(`${base}/api/v1/jobs/${jobId}`, { headers })).json()) as { status: string };
    await until(async () => (await job()).status === "completed", 30_000);
    expect(await job()).toMatchObject({ status: "completed", attempts: 2, result: { status: 200 } });
    expect(agent.requests).toHaveLength(2);
  }, 120_000);
});
