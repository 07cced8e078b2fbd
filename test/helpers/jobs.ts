import { randomBytes } from "node:crypto";
import { jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { jobSubmission, structuredBytes } from "../../src/executor/job-event.js";

/** The graph the issue says must work exactly as written. */
export const SHOUT = {
  name: "shout",
  nodes: [{ id: "up", type: "transform", expression: "{'text': $uppercase(input.text)}" }],
  edges: [
    { from: "__start__", to: "up" },
    { from: "up", to: "__end__" },
  ],
};

/** A one-node graph: `node` named `id`, from start to end. */
export function oneNodeGraph(name: string, node: Record<string, unknown> & { id: string }) {
  return {
    name,
    nodes: [node],
    edges: [
      { from: "__start__", to: node.id },
      { from: node.id, to: "__end__" },
    ],
  };
}

/** The events of a job's Server-Sent Events stream, in the order they came. */
export function sseEvents(
  body: string,
): Array<{ event_type: string; data: Record<string, unknown>; seq: number }> {
  return body
    .split("\n\n")
    .filter((block) => block.includes("data: "))
    .map((block) => JSON.parse(block.slice(block.indexOf("data: ") + 6)));
}

/**
 * Publishes a job as an outside system would: a CloudEvent on `<prefix>.execute.demo`,
 * its id as the JetStream message id (so a repeat is dropped by the stream).
 */
export async function publishJob(
  nats: NatsConnection,
  prefix: string,
  job: { id: string; definition: unknown; input: unknown },
): Promise<void> {
  const event = jobSubmission(
    {
      job_id: job.id,
      trace_id: randomBytes(16).toString("hex"),
      agent_definition: job.definition,
      input_payload: job.input,
    },
    "test",
  );
  await jetstream(nats).publish(`${prefix}.execute.demo`, structuredBytes(event), { msgID: job.id });
}
