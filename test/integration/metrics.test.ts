import { randomBytes } from "node:crypto";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { until } from "../helpers/eventually.js";
import { type MockAgent, startMockAgent } from "../helpers/mock-agent.js";
import { TEST_NATS_URL } from "../helpers/services.js";
import { invokeEnv, registerAgent, startTestSteward, type TestSteward } from "../helpers/steward.js";
import { TcpProxy } from "../helpers/tcp-proxy.js";

/** What an operator sees: the /metrics text as Prometheus scrapes it, read sample by sample. */

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const SAMPLE_LINE = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/;

function parseSamples(text: string): Sample[] {
  return text.split("\n").flatMap((line) => {
    const match = SAMPLE_LINE.exec(line);
    if (!match) return [];
    const labels = Object.fromEntries(
      [...(match[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map(([, key, value]) => [key, value]),
    );
    return [{ name: match[1] as string, labels, value: Number(match[3]) }];
  });
}

async function scrape(t: TestSteward): Promise<{ text: string; samples: Sample[] }> {
  const response = await t.request({ method: "GET", url: "/metrics", key: null });
  expect(response.statusCode, response.body).toBe(200);
  expect(response.headers["content-type"]).toContain("text/plain");
  return { text: response.body, samples: parseSamples(response.body) };
}

/** The series named `name` whose labels include `labels`. */
function series(samples: Sample[], name: string, labels: Record<string, string> = {}): Sample[] {
  return samples.filter(
    (sample) =>
      sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value),
  );
}

/** The value of the one series named `name` with `labels`, or 0 when it is absent (a counter not yet incremented). */
function sampleValue(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const found = series(samples, name, labels);
  expect(found.length, `${name} ${JSON.stringify(labels)}`).toBeLessThanOrEqual(1);
  return found[0]?.value ?? 0;
}

const INVOKE_ROUTE = "/api/v1/external-agents/:id/invoke";

describe("metrics of the invoke pipeline and deliveries", () => {
  let t: TestSteward;
  let agent: MockAgent;
  let slack: MockAgent;

  beforeAll(async () => {
    agent = await startMockAgent();
    slack = await startMockAgent(() => ({ status: 200, body: "ok" }));
    t = await startTestSteward("postgres", invokeEnv());
  });
  afterAll(async () => {
    await t?.close();
    await agent?.close();
    await slack?.close();
  });

  it("counts an allowed and a rate-limited call, times the invoke route by template, and counts the delivery", async () => {
    const id = await registerAgent(t, agent.url, {
      platform: "slack",
      platform_config: { webhook_url: slack.url, channel: "#ops" },
      // A day's window: two calls a moment apart straddle a bucket boundary (which lets the
      // second through) only across midnight UTC, not at every full minute.
      rate_limit_config: { requests_per_day: 1 },
    });
    const invokeCount = (samples: Sample[], status: string) =>
      sampleValue(samples, "steward_http_request_duration_seconds_count", {
        method: "POST",
        route: INVOKE_ROUTE,
        status_code: status,
      });
    const before = (await scrape(t)).samples;

    const invoke = () =>
      t.request({ method: "POST", url: `/api/v1/external-agents/${id}/invoke`, payload: { input: "hi" } });
    expect((await invoke()).statusCode).toBe(200);
    expect((await invoke()).statusCode).toBe(429);

    const { text, samples } = await scrape(t);
    expect(sampleValue(samples, "steward_governance_decisions_total", { outcome: "allowed" })).toBe(1);
    expect(sampleValue(samples, "steward_governance_decisions_total", { outcome: "rate_limited" })).toBe(1);
    expect(series(samples, "steward_governance_decisions_total")).toHaveLength(2);
    expect(sampleValue(samples, "steward_invocations_total", { status: "success" })).toBe(1);
    expect(sampleValue(samples, "steward_invocations_total", { status: "rate_limited" })).toBe(1);

    expect(invokeCount(samples, "200")).toBe(invokeCount(before, "200") + 1);
    expect(invokeCount(samples, "429")).toBe(invokeCount(before, "429") + 1);
    const slowest = sampleValue(samples, "steward_http_request_duration_seconds_bucket", {
      route: INVOKE_ROUTE,
      status_code: "200",
      le: "+Inf",
    });
    expect(slowest).toBe(1);
    // The concrete id never becomes a label: one series per route, not per agent.
    expect(text).not.toContain(id);

    await until(
      async () =>
        sampleValue((await scrape(t)).samples, "steward_deliveries_total", { state: "delivered" }) > 0,
    );
    const delivered = (await scrape(t)).samples;
    expect(sampleValue(delivered, "steward_deliveries_total", { state: "delivered" })).toBe(1);
    expect(series(delivered, "steward_deliveries_total", { state: "dead" })).toHaveLength(0);
    expect(slack.requests).toHaveLength(1);
  });

  it("does not count a replayed Idempotency-Key call as a new decision", async () => {
    const id = await registerAgent(t, agent.url);
    const allowed = async () =>
      sampleValue((await scrape(t)).samples, "steward_governance_decisions_total", { outcome: "allowed" });
    const before = await allowed();
    for (let i = 0; i < 2; i++) {
      const response = await t.request({
        method: "POST",
        url: `/api/v1/external-agents/${id}/invoke`,
        payload: { input: "once" },
        headers: { "idempotency-key": `metrics-${id}` },
      });
      expect(response.statusCode, response.body).toBe(200);
    }
    expect(await allowed()).toBe(before + 1);
  });

  it("labels a request no route matched as unmatched, not by its path", async () => {
    // Under /api: elsewhere a GET may be a dashboard page.
    const path = `/api/v1/no-such-route-${randomBytes(4).toString("hex")}`;
    expect((await t.request({ method: "GET", url: path, key: null })).statusCode).toBe(404);
    const { text, samples } = await scrape(t);
    expect(
      sampleValue(samples, "steward_http_request_duration_seconds_count", {
        method: "GET",
        route: "unmatched",
        status_code: "404",
      }),
    ).toBeGreaterThanOrEqual(1);
    expect(text).not.toContain(path);
  });

  it("shows the job stream subscribers and the in-process queue's lag", async () => {
    const { samples } = await scrape(t);
    expect(series(samples, "steward_job_stream_subscribers")).toEqual([
      { name: "steward_job_stream_subscribers", labels: {}, value: 0 },
    ]);
    expect(series(samples, "steward_jobs_consumer_pending")).toEqual([
      { name: "steward_jobs_consumer_pending", labels: { queue: "in_process" }, value: 0 },
    ]);
    expect(series(samples, "steward_jobs_consumer_ack_pending")).toEqual([
      { name: "steward_jobs_consumer_ack_pending", labels: { queue: "in_process" }, value: 0 },
    ]);
  });
});

describe("metrics of the JetStream consumer", () => {
  const run = randomBytes(4).toString("hex");
  const stream = `M_${run.toUpperCase()}`;
  let nats: NatsConnection;
  let proxy: TcpProxy;
  let t: TestSteward;

  beforeAll(async () => {
    nats = await connect({ servers: TEST_NATS_URL });
    // Steward reaches NATS through a proxy, so the test can take NATS away from it alone.
    proxy = await TcpProxy.open(TEST_NATS_URL, 4222);
    t = await startTestSteward("postgres", {
      NATS_URL: proxy.urlFor(TEST_NATS_URL),
      STEWARD_JOBS_STREAM: stream,
      STEWARD_JOBS_SUBJECT_PREFIX: `m${run}.agent`,
      STEWARD_JOBS_CONSUMER: `workers-${run}`,
    });
  });
  afterAll(async () => {
    await proxy?.start();
    await t?.close();
    await proxy?.stop();
    const manager = await jetstreamManager(nats);
    for (const name of [stream, `${stream}_STATUS`]) await manager.streams.delete(name).catch(() => false);
    await nats?.drain();
  });

  const lagSeries = (samples: Sample[]) => [
    ...series(samples, "steward_jobs_consumer_pending"),
    ...series(samples, "steward_jobs_consumer_ack_pending"),
  ];

  it("reports the consumer's pending and ack-pending counts", async () => {
    const { samples } = await scrape(t);
    const lag = lagSeries(samples);
    expect(lag.map((sample) => sample.labels)).toEqual([{ queue: "jetstream" }, { queue: "jetstream" }]);
    for (const sample of lag) expect(Number.isInteger(sample.value) && sample.value >= 0).toBe(true);
    expect(sampleValue(samples, "steward_job_stream_subscribers")).toBe(0);
  });

  it("still answers /metrics while NATS is away, without the lag series, and shows them again after", async () => {
    await proxy.stop();
    const { samples } = await scrape(t);
    expect(lagSeries(samples)).toEqual([]);
    expect(series(samples, "steward_job_stream_subscribers")).toHaveLength(1);
    expect(t.logs.some((line) => line.includes("cannot read the job consumer's lag"))).toBe(true);

    await proxy.start();
    await until(async () => lagSeries((await scrape(t)).samples).length === 2, 20_000);
    expect(lagSeries((await scrape(t)).samples)).toHaveLength(2);
  });
});
