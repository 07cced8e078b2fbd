import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { loadConfig } from "../../src/config.js";
import { jetStreamDeclarations } from "../../src/executor/job-queue.js";

const YAML_PATH = new URL("../../deploy/nats/jetstream.yaml", import.meta.url);

type Resource = {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  spec: Record<string, unknown>;
};

/** The NACK resources in deploy/nats/jetstream.yaml. */
function resources(): Resource[] {
  return parseAllDocuments(readFileSync(YAML_PATH, "utf8"))
    .map((document) => {
      expect(document.errors).toEqual([]);
      return document.toJS() as Resource | null;
    })
    .filter((resource): resource is Resource => resource !== null);
}

const NANOS_PER_UNIT: Record<string, number> = {
  ns: 1,
  us: 1e3,
  µs: 1e3,
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

/** Nanoseconds in a Go duration string ("2m", "1h30m", "300s"), the form NACK takes. */
function goDurationNanos(value: unknown): number {
  const part = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g;
  if (typeof value !== "string" || !new RegExp(`^(?:${part.source})+$`).test(value)) {
    throw new Error(`not a Go duration: ${JSON.stringify(value)}`);
  }
  let total = 0;
  for (const [, amount, unit] of value.matchAll(part))
    total += Number(amount) * (NANOS_PER_UNIT[unit ?? ""] ?? 0);
  return total;
}

/**
 * A NACK Stream spec in the JetStream API's terms. A field Steward does not set is an error:
 * Steward's update at start would not undo it, and the two would disagree.
 */
function streamConfig(spec: Record<string, unknown>): Record<string, unknown> {
  const config: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(spec)) {
    if (field === "name" || field === "subjects" || field === "retention" || field === "storage") {
      config[field] = value;
    } else if (field === "duplicateWindow") {
      config.duplicate_window = goDurationNanos(value);
    } else if (field === "maxAge") {
      config.max_age = goDurationNanos(value);
    } else if (field === "republish") {
      const { source, destination, ...rest } = value as Record<string, unknown>;
      expect(rest, "republish fields Steward does not set").toEqual({});
      config.republish = { src: source, dest: destination };
    } else {
      throw new Error(`Stream field ${field} is not one Steward sets`);
    }
  }
  return config;
}

const CONSUMER_FIELDS: Record<string, string> = {
  streamName: "stream",
  durableName: "durable_name",
  ackPolicy: "ack_policy",
  deliverPolicy: "deliver_policy",
  maxDeliver: "max_deliver",
  maxAckPending: "max_ack_pending",
};

/** A NACK Consumer spec in the JetStream API's terms (plus the stream it reads). */
function consumerConfig(spec: Record<string, unknown>): Record<string, unknown> {
  const config: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(spec)) {
    if (field === "ackWait") config.ack_wait = goDurationNanos(value);
    else if (CONSUMER_FIELDS[field]) config[CONSUMER_FIELDS[field]] = value;
    else throw new Error(`Consumer field ${field} is not one Steward sets`);
  }
  return config;
}

describe("deploy/nats/jetstream.yaml", () => {
  const declared = jetStreamDeclarations(loadConfig({}).executor);
  const all = resources();
  const streams = all.filter((resource) => resource.kind === "Stream");
  const consumers = all.filter((resource) => resource.kind === "Consumer");
  const stream = (name: string) => streams.find((resource) => resource.spec.name === name);

  it("holds NACK v1beta2 resources: the two streams and the consumer, nothing else", () => {
    expect(all.map((resource) => resource.apiVersion)).toEqual(all.map(() => "jetstream.nats.io/v1beta2"));
    expect(streams.map((resource) => resource.spec.name).sort()).toEqual(
      [declared.jobs.name, declared.status.name].sort(),
    );
    expect(consumers.map((resource) => resource.spec.durableName)).toEqual([declared.consumer.durable_name]);
    expect(all).toHaveLength(3);
  });

  it("declares the work-queue stream as Steward creates it with default settings", () => {
    const spec = stream(declared.jobs.name)?.spec;
    expect(spec).toBeDefined();
    expect(streamConfig(spec ?? {})).toEqual(declared.jobs);
  });

  it("declares the status stream, with its republish, as Steward creates it", () => {
    const spec = stream(declared.status.name)?.spec;
    expect(spec).toBeDefined();
    expect(streamConfig(spec ?? {})).toEqual(declared.status);
  });

  it("declares the pull consumer with Steward's default ack wait and delivery limit", () => {
    const spec = consumers[0]?.spec ?? {};
    // NACK makes a push consumer when a deliverSubject is set; Steward pulls.
    expect(spec.deliverSubject).toBeUndefined();
    expect(consumerConfig(spec)).toEqual(declared.consumer);
  });
});

describe("jetStreamDeclarations", () => {
  it("follows the STEWARD_JOBS_* settings the YAML's comments point operators to", () => {
    const { jobs, status, consumer } = jetStreamDeclarations(
      loadConfig({
        STEWARD_JOBS_STREAM: "JOBS",
        STEWARD_JOBS_SUBJECT_PREFIX: "team",
        STEWARD_JOBS_CONSUMER: "team-workers",
        STEWARD_JOBS_ACK_WAIT_S: "60",
        STEWARD_JOBS_MAX_DELIVER: "5",
      }).executor,
    );
    expect(jobs).toMatchObject({ name: "JOBS", subjects: ["team.execute.*"] });
    expect(status).toMatchObject({
      name: "JOBS_STATUS",
      subjects: ["team.results.>"],
      republish: { src: "team.results.>", dest: "team.status.>" },
    });
    expect(consumer).toMatchObject({
      stream: "JOBS",
      durable_name: "team-workers",
      ack_wait: goDurationNanos("60s"),
      max_deliver: 5,
    });
  });
});
