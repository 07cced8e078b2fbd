import type { ServerResponse } from "node:http";
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import type {} from "@fastify/websocket";
import Type from "typebox";
import { requestContext } from "../auth/access-control.js";
import { GuardedSocket } from "../auth/guarded-socket.js";
import { AppError } from "../errors.js";
import { API_SECURITY, errorResponses, Nullable } from "../http/openapi.js";
import { PageQuery, Paginated, pageRequest } from "../http/pagination.js";
import type { Executor } from "./executor.js";
import { GRAPH_DEFINITION_JSON_SCHEMA, GRAPH_EXAMPLES } from "./graph-definition.js";
import { toJobView } from "./job-store.js";
import type { JobStreamEvent } from "./job-stream.js";

const tags = ["Jobs"];
const JOB_STATUSES = ["queued", "running", "completed", "failed", "cancelled"] as const;

const Job = Type.Object({
  id: Type.String(),
  organization_id: Type.String(),
  name: Type.String(),
  trace_id: Type.String(),
  status: Type.Enum(JOB_STATUSES),
  result: Type.Unknown(),
  error: Nullable(
    Type.Object({ message: Type.String(), type: Type.String(), stack_trace: Type.Optional(Type.String()) }),
  ),
  attempts: Type.Integer(),
  source: Type.String(),
  cancel_requested: Type.Boolean(),
  checkpoints: Type.Optional(Type.Integer()),
  created_at: Type.String({ format: "date-time" }),
  started_at: Nullable(Type.String({ format: "date-time" })),
  finished_at: Nullable(Type.String({ format: "date-time" })),
});

const SubmitBody = Type.Object(
  {
    job_id: Type.Optional(
      Type.String({ pattern: "^[A-Za-z0-9._:-]{1,128}$", description: "Default: a new job_… id" }),
    ),
    trace_id: Type.Optional(
      Type.String({
        pattern: "^[0-9a-f]{32}$",
        description: "W3C trace id: 32 lower-case hex digits, not all zeros; default: a new one",
      }),
    ),
    agent_definition: Type.Record(Type.String(), Type.Unknown(), {
      description: "The graph: see GET /api/v1/jobs/schema and docs/executor.md",
    }),
    input_payload: Type.Unknown(),
  },
  { additionalProperties: false },
);

const JobIdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128 }) });
const StreamQuery = Type.Object({
  last_event_id: Type.Optional(
    Type.Integer({ minimum: 0, description: "Resume after this seq (or send Last-Event-ID)" }),
  ),
});

/** /api/v1/jobs: submit, read, cancel and watch jobs of the caller's organization. */
export function jobRoutes(executor: Executor): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get(
      "/jobs/schema",
      {
        config: { permission: "jobs:read" },
        schema: {
          summary: "The JSON Schema of agent_definition, with examples",
          tags,
          security: API_SECURITY,
          response: { 200: Type.Object({ schema: Type.Unknown(), examples: Type.Unknown() }) },
        },
      },
      async () => ({ schema: GRAPH_DEFINITION_JSON_SCHEMA, examples: GRAPH_EXAMPLES }),
    );

    app.post(
      "/jobs",
      {
        config: { permission: "jobs:submit" },
        schema: {
          summary: "Submit a job to run in the background",
          description:
            "202 with the job. Published to JetStream (agent.execute.<name>) when NATS is configured, run in process otherwise. The same job_id again answers 200 with that job and runs nothing.",
          tags,
          security: API_SECURITY,
          body: SubmitBody,
          response: { 200: Job, 202: Job, ...errorResponses(400, 401, 403, 409, 503) },
        },
      },
      async (request, reply) => {
        const { job, created } = await executor.submit({
          ...request.body,
          organizationId: request.principal.organizationId,
          createdBy: requestContext(request).actor.id,
        });
        return reply.status(created ? 202 : 200).send(job);
      },
    );

    app.get(
      "/jobs",
      {
        config: { permission: "jobs:read" },
        schema: {
          summary: "List jobs, newest first",
          tags,
          security: API_SECURITY,
          querystring: Type.Object({ ...PageQuery, status: Type.Optional(Type.Enum(JOB_STATUSES)) }),
          response: { 200: Paginated(Job), ...errorResponses(400, 401, 403) },
        },
      },
      async (request) =>
        executor.store.list(
          request.principal.organizationId,
          { status: request.query.status },
          pageRequest(request.query),
        ),
    );

    app.get(
      "/jobs/:id",
      {
        config: { permission: "jobs:read" },
        schema: {
          summary: "A job: status, result, error, attempts and checkpoints",
          tags,
          security: API_SECURITY,
          params: JobIdParams,
          response: { 200: Job, ...errorResponses(401, 403, 404) },
        },
      },
      async (request) => {
        const row = await executor.store.get(request.principal.organizationId, request.params.id);
        return toJobView(row, await executor.store.checkpointCount(row.id));
      },
    );

    app.get(
      "/jobs/:id/state",
      {
        config: { permission: "jobs:read" },
        schema: {
          summary: "The job's latest checkpointed state",
          tags,
          security: API_SECURITY,
          params: JobIdParams,
          response: {
            200: Type.Object({ job_id: Type.String(), checkpoints: Type.Integer(), state: Type.Unknown() }),
            ...errorResponses(401, 403, 404),
          },
        },
      },
      async (request) => {
        const row = await executor.store.get(request.principal.organizationId, request.params.id);
        const [state, checkpoints] = await Promise.all([
          executor.runner.state(row),
          executor.store.checkpointCount(row.id),
        ]);
        return { job_id: row.id, checkpoints, state: state?.values ?? null };
      },
    );

    app.post(
      "/jobs/:id/cancel",
      {
        config: { permission: "jobs:submit" },
        schema: {
          summary: "Cancel a queued or running job (it stops at the next node)",
          tags,
          security: API_SECURITY,
          params: JobIdParams,
          response: { 202: Job, ...errorResponses(401, 403, 404, 409) },
        },
      },
      async (request, reply) => {
        const { organizationId } = request.principal;
        const requested = await executor.store.requestCancel(organizationId, request.params.id);
        const row = await executor.store.get(organizationId, request.params.id);
        if (!requested)
          throw new AppError("CONFLICT", `the job is already ${row.status}`, { status: row.status });
        return reply.status(202).send(toJobView(row));
      },
    );

    const openStreams = new Set<ServerResponse>();
    app.addHook("preClose", async () => {
      for (const stream of openStreams) stream.end();
    });

    app.get(
      "/jobs/:id/stream",
      {
        config: { permission: "jobs:read" },
        schema: {
          summary: "The job's events as Server-Sent Events (history first, then live, until end)",
          description:
            "Each event: `id: <seq>`, `event: <event_type>`, `data: {event_type, data, seq}`. Reconnect with Last-Event-ID to get what was missed.",
          tags,
          security: API_SECURITY,
          params: JobIdParams,
          querystring: StreamQuery,
        },
      },
      async (request, reply) => {
        const row = await executor.store.get(request.principal.organizationId, request.params.id);
        const header = request.headers["last-event-id"];
        // A reconnecting EventSource sends the header to the same URL: the later of the two wins.
        const after = Math.max(
          request.query.last_event_id ?? 0,
          typeof header === "string" ? Number(header) || 0 : 0,
        );
        reply.hijack();
        // Shutdown must not wait for a reader: its stream is ended, and it resumes with Last-Event-ID.
        openStreams.add(reply.raw);
        reply.raw.once("close", () => openStreams.delete(reply.raw));
        reply.raw.writeHead(200, {
          "content-type": "text/event-stream",
          "cache-control": "no-cache",
          connection: "keep-alive",
          "x-request-id": String(request.id),
        });
        // The reader learns at once that its stream is open, before any event.
        reply.raw.flushHeaders();
        const write = (event: JobStreamEvent) =>
          reply.raw.write(`id: ${event.seq}\nevent: ${event.event_type}\ndata: ${JSON.stringify(event)}\n\n`);
        await replayThenFollow(
          executor,
          row.id,
          after,
          write,
          () => reply.raw.end(),
          (close) => reply.raw.once("close", close),
        );
      },
    );

    app.get(
      "/jobs/:id/stream/ws",
      {
        websocket: true,
        config: { permission: "jobs:read", queryCredential: true },
        schema: {
          summary: "The job's events over a WebSocket (history first, then live, until end)",
          tags,
          security: API_SECURITY,
          params: JobIdParams,
          querystring: StreamQuery,
        },
        // Before the upgrade: another organization's or an unknown job is a 404, not a socket.
        preHandler: async (request) => {
          await executor.store.get(request.principal.organizationId, request.params.id);
        },
      },
      async (socket, request) => {
        const guarded = new GuardedSocket(socket, request);
        await replayThenFollow(
          executor,
          request.params.id,
          request.query.last_event_id ?? 0,
          (event) => void guarded.send(JSON.stringify(event)),
          () => void guarded.sent().then(() => socket.close(1000, "end")),
          (close) => socket.once("close", close),
        );
      },
    );
  };
}

/** How long a stream waits for its live channel (Redis) before following the stored events instead. */
const SUBSCRIBE_WAIT_MS = 2_000;
/** How often a stream without its live channel reads the stored events. */
const POLL_MS = 1_000;

/**
 * Sends what a job has streamed after `after`, then its live events, without a gap or a
 * repeat (live events are held until the history is out, and numbered), and ends after
 * the `end` event — at once for a job that has already ended. When the live channel
 * cannot be had (Redis away), the stored events are read every second instead.
 */
async function replayThenFollow(
  executor: Executor,
  jobId: string,
  after: number,
  send: (event: JobStreamEvent) => void,
  end: () => void,
  onClose: (close: () => void) => void,
): Promise<void> {
  let last = after;
  let finished = false;
  const held: JobStreamEvent[] = [];
  let replaying = true;
  let stopFollowing = async () => {};
  const finish = () => {
    finished = true;
    void stopFollowing().finally(end);
  };
  const deliver = (event: JobStreamEvent) => {
    // `end` is let through whatever its number: a job failed outside its run (a lost worker)
    // numbers it after its last stored event, which can be below what was streamed live.
    if (finished || (event.seq <= last && event.event_type !== "end")) return;
    last = Math.max(last, event.seq);
    send(event);
    if (event.event_type === "end") finish();
  };
  // Registered first: a reader can leave while the live channel is still being had.
  onClose(() => {
    finished = true;
    void stopFollowing();
  });
  const live = await liveChannel(executor, jobId, (event) => {
    if (replaying) held.push(event);
    else deliver(event);
  });
  if (live) stopFollowing = live;
  if (finished) {
    await live?.();
    return;
  }
  for (const event of await executor.streams.history(jobId, after)) deliver(event);
  replaying = false;
  for (const event of held.splice(0)) deliver(event);
  if (live || finished) return;
  let reading = false;
  const timer = setInterval(() => {
    // One read at a time; a read that fails ends the stream (the reader resumes with Last-Event-ID).
    if (reading || finished) return;
    reading = true;
    executor.streams
      .history(jobId, last)
      .then((events) => events.forEach(deliver), finish)
      .finally(() => {
        reading = false;
      });
  }, POLL_MS);
  stopFollowing = async () => clearInterval(timer);
}

/**
 * The job's live events, or undefined when the channel cannot be had within
 * SUBSCRIBE_WAIT_MS (Redis unreachable): the caller follows the stored events then.
 */
async function liveChannel(
  executor: Executor,
  jobId: string,
  listener: (event: JobStreamEvent) => void,
): Promise<(() => Promise<void>) | undefined> {
  const subscribing = executor.streams.subscribe(jobId, listener);
  let timer: NodeJS.Timeout | undefined;
  const waited = new Promise<undefined>((resolve) => {
    timer = setTimeout(resolve, SUBSCRIBE_WAIT_MS, undefined);
  });
  try {
    const unsubscribe = await Promise.race([subscribing, waited]);
    // Given up on: a subscription that comes through later is undone at once. One that fails
    // later, or whose undoing fails, has already dropped its listener: nothing is left to undo.
    if (unsubscribe === undefined) subscribing.then((late) => late()).catch(() => undefined);
    return unsubscribe;
  } catch {
    // Refused (Redis away): the stored events are followed instead.
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}
