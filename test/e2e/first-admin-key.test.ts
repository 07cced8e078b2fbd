import { randomBytes } from "node:crypto";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { freePort } from "../helpers/ports.js";
import { TEST_DATABASE_URL, TEST_NATS_URL } from "../helpers/services.js";
import { type StewardProcess, spawnSteward, stewardEnvironment } from "../helpers/steward-process.js";

/**
 * A fresh installation without STEWARD_BOOTSTRAP_ADMIN_KEY, whose worker starts before its
 * API (workers have no migrations init container in the Helm chart): the one admin key
 * anybody can see is the one the first API process prints.
 */
describe("the first admin key on a fresh database", () => {
  const run = randomBytes(4).toString("hex");
  const stream = `FIRSTKEY_${run.toUpperCase()}`;
  const { schema, env } = stewardEnvironment({
    NATS_URL: TEST_NATS_URL,
    STEWARD_JOBS_STREAM: stream,
    STEWARD_JOBS_SUBJECT_PREFIX: `t${run}.agent`,
    STEWARD_JOBS_CONSUMER: `workers-${run}`,
  });
  const { STEWARD_BOOTSTRAP_ADMIN_KEY: _, ...withoutBootstrapKey } = env;
  const processes: StewardProcess[] = [];

  afterAll(async () => {
    for (const steward of processes) await steward.kill("SIGKILL");
    const nats = await connect({ servers: TEST_NATS_URL });
    const manager = await jetstreamManager(nats);
    for (const name of [stream, `${stream}_STATUS`]) await manager.streams.delete(name).catch(() => false);
    await nats.drain();
  });

  async function apiKeyCount(): Promise<number> {
    const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await client.connect();
    try {
      const { rows } = await client.query(`SELECT count(*)::int AS n FROM "${schema}".api_keys`);
      return rows[0].n;
    } finally {
      await client.end();
    }
  }

  it("is not made unseen by a worker, and is printed by the first API process", async () => {
    const worker = spawnSteward("worker", {
      ...withoutBootstrapKey,
      STEWARD_WORKER_PORT: String(await freePort()),
    });
    processes.push(worker);
    await worker.waitForOutput(/worker consuming jobs/);
    expect(await apiKeyCount()).toBe(0);

    const port = await freePort();
    const api = spawnSteward("serve", { ...withoutBootstrapKey, PORT: String(port) });
    processes.push(api);
    await api.waitForOutput(/It is shown only now:\s+(sk_live_\S+)/);
    const key = /It is shown only now:\s+(sk_live_\S+)/.exec(api.output())?.[1];
    const answer = await fetch(`http://127.0.0.1:${port}/api/v1/external-agents`, {
      headers: { authorization: `Bearer ${key}` },
    });
    expect(answer.status).toBe(200);
    expect(await apiKeyCount()).toBe(1);
  });
});
