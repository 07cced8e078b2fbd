import { randomBytes } from "node:crypto";
import { CloudEvent, ValidationError as CloudEventValidationError, CONSTANTS, HTTP, V1 } from "cloudevents";
import Type, { type TSchema } from "typebox";
import { Compile } from "typebox/compile";
import { type FieldError, ValidationError } from "../errors.js";
import { type SchemaError, toFieldErrors } from "../http/field-errors.js";

/** The work a job event asks the executor to do. */
export interface JobExecutionEvent {
  job_id: string;
  trace_id: string;
  agent_definition: unknown;
  input_payload: unknown;
  organization_id?: string;
}

/** CloudEvent type of a job submission. */
export const JOB_EXECUTE_TYPE = "steward.job.execute";
/** CloudEvent type of a job's success. */
export const JOB_COMPLETED_TYPE = "agent.status.completed";
/** CloudEvent type of a job's failure. */
export const JOB_FAILED_TYPE = "agent.status.failed";

/**
 * The JobExecutionEvent schema (TypeBox): job_id 1–128 chars of [A-Za-z0-9._:-]; trace_id 32
 * lower-case hex, not all zeros; organization_id 1–64 chars. agent_definition must be an object
 * (its graph is validated elsewhere). Unknown properties are allowed and dropped on parsing, so
 * a producer may add fields before the executor knows them.
 */
export const JobExecutionEventSchema: TSchema = Type.Object({
  job_id: Type.String({ minLength: 1, maxLength: 128, pattern: "^[A-Za-z0-9._:-]+$" }),
  trace_id: Type.String({ pattern: "^(?!0{32}$)[0-9a-f]{32}$" }),
  agent_definition: Type.Object({}),
  input_payload: Type.Unknown(),
  organization_id: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
});

const jobValidator = Compile(JobExecutionEventSchema);

// TypeBox reports a failed pattern as the regular expression itself; say what it means.
const PATTERN_MESSAGES: Record<string, string> = {
  "/job_id": "must contain only letters, digits and . _ : -",
  "/trace_id": "must be 32 lower-case hex digits, not all zeros",
};

/** Why an incoming message can never succeed, for logs, metrics and dead letters. */
export type InvalidJobEventReason =
  | "not_cloudevent"
  | "spec_version"
  | "not_json"
  | "invalid_event"
  | "invalid_data";

const MAX_ECHO = 200;

/** Cuts text that may come from the message, so a huge body never ends up in a log line or a reply. */
function clip(text: string): string {
  return text.length > MAX_ECHO ? `${text.slice(0, MAX_ECHO)}…` : text;
}

/**
 * Why an incoming message can never succeed: not a CloudEvent, wrong spec version, data not
 * JSON, or data not a JobExecutionEvent (with field errors). Retrying cannot help, so consumers
 * should dead-letter the message rather than redeliver it. A ValidationError, so the HTTP layer
 * answers 400 with the field errors.
 */
export class InvalidJobEventError extends ValidationError {
  constructor(
    readonly reason: InvalidJobEventReason,
    errors: FieldError[],
    message = `Invalid job event: ${errors.map((error) => `${error.field} ${error.message}`).join("; ")}`,
  ) {
    super(errors, clip(message));
    this.name = "InvalidJobEventError";
  }
}

function invalid(reason: InvalidJobEventReason, field: string, message: string): InvalidJobEventError {
  return new InvalidJobEventError(reason, [{ field, message: clip(message) }]);
}

/** An accepted job and the attributes of the CloudEvent that carried it. */
export interface IncomingJob {
  cloudEvent: { id: string; source: string; type: string; subject?: string; time?: string };
  job: JobExecutionEvent;
}

type RawHeaders = Record<string, string | string[] | undefined>;

/** What a transport delivered, before the cloudevents package sees it. */
interface Delivery {
  headers: Record<string, string>;
  body: Uint8Array | string;
}

/**
 * Lower-cases names and keeps only the headers CloudEvents bindings read. A header sent more
 * than once with different values is refused: which one wins would be a guess.
 */
function eventHeaders(headers: RawHeaders): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [rawName, rawValue] of Object.entries(headers)) {
    const name = rawName.toLowerCase();
    if (name !== CONSTANTS.HEADER_CONTENT_TYPE && !name.startsWith(CONSTANTS.EXTENSIONS_PREFIX)) continue;
    if (rawValue === undefined) continue;
    const values = [...new Set(Array.isArray(rawValue) ? rawValue : [rawValue])];
    if (values.length === 0) continue;
    if (values.length > 1 || (Object.hasOwn(result, name) && result[name] !== values[0])) {
      throw invalid("invalid_event", name, "header is given more than once with different values");
    }
    result[name] = values[0] as string;
  }
  return result;
}

/** "Application/JSON; charset=utf-8" → "application/json" */
function mediaType(contentType: string | undefined): string | undefined {
  return contentType?.split(";")[0]?.trim().toLowerCase() || undefined;
}

function isJsonMediaType(type: string): boolean {
  return type === "application/json" || type.endsWith("+json");
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

function text(body: Uint8Array | string, what: string): string {
  if (typeof body === "string") return body;
  try {
    return utf8.decode(body);
  } catch {
    throw invalid("not_json", what, "is not valid UTF-8");
  }
}

/** JSON.parse keeps "__proto__" as an ordinary own key, so parsed data cannot reach Object.prototype. */
function parseJson(source: string, what: string): unknown {
  try {
    return JSON.parse(source);
  } catch (error) {
    throw invalid("not_json", what, `is not JSON: ${(error as Error).message}`);
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The parts of a message that the package's parsing would lose or replace with defaults. */
interface Parsed {
  /** The message as the cloudevents package should see it: attributes only, no data. */
  message: { headers: Record<string, string>; body: Record<string, unknown> | undefined };
  specversion: unknown;
  id: unknown;
  time: unknown;
  datacontenttype: string | undefined;
  /** Returns the decoded data, or undefined when the event has none. */
  data: () => unknown;
}

function fromStructured(delivery: Delivery): Parsed {
  const raw = parseJson(text(delivery.body, "body"), "body");
  if (!isRecord(raw)) throw invalid("not_cloudevent", "body", "is not a CloudEvent: expected a JSON object");
  if (!["specversion", "id", "source", "type"].some((attribute) => Object.hasOwn(raw, attribute))) {
    // Most likely a bare JobExecutionEvent published without its envelope.
    throw invalid("not_cloudevent", "body", "is not a CloudEvent: it has no specversion, id, source or type");
  }
  const attributes: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) {
    // Data is decoded here, not by the package, and a "__proto__" attribute is dropped: the package
    // copies attributes by assignment, which would make it the prototype of its working object.
    if (key === "data" || key === "data_base64" || key === "__proto__") continue;
    attributes[key] = value;
  }
  const datacontenttype = typeof raw.datacontenttype === "string" ? raw.datacontenttype : undefined;
  return {
    message: { headers: { [CONSTANTS.HEADER_CONTENT_TYPE]: CONSTANTS.MIME_CE_JSON }, body: attributes },
    specversion: raw.specversion,
    id: raw.id,
    time: raw.time,
    datacontenttype,
    data: () => {
      if (Object.hasOwn(raw, "data") && Object.hasOwn(raw, "data_base64")) {
        throw invalid("invalid_event", "data_base64", "must not be given together with data");
      }
      if (Object.hasOwn(raw, "data_base64")) {
        if (typeof raw.data_base64 !== "string") throw invalid("not_json", "data_base64", "must be a string");
        return parseJson(text(Buffer.from(raw.data_base64, "base64"), "data_base64"), "data_base64");
      }
      return raw.data;
    },
  };
}

function fromBinary(delivery: Delivery): Parsed {
  const { headers } = delivery;
  return {
    // The body stays away from the package: its JSON parser quotes text that does not start
    // with { [ or " and parses again data that is itself a JSON string.
    message: { headers, body: undefined },
    specversion: headers[CONSTANTS.CE_HEADERS.SPEC_VERSION],
    id: headers[CONSTANTS.CE_HEADERS.ID],
    time: headers[CONSTANTS.CE_HEADERS.TIME],
    datacontenttype: headers[CONSTANTS.HEADER_CONTENT_TYPE],
    data: () => {
      const source = text(delivery.body, "data");
      return source.length === 0 ? undefined : parseJson(source, "data");
    },
  };
}

function hasEventHeaders(headers: Record<string, string>): boolean {
  return Object.keys(headers).some((name) => name.startsWith(CONSTANTS.EXTENSIONS_PREFIX));
}

/** The fields of a CloudEvent validation error, named after the attribute at fault. */
function attributeErrors(error: unknown): FieldError[] {
  if (error instanceof CloudEventValidationError) {
    // Ajv's errors (a missing or malformed attribute) have the shape the field-error mapper reads.
    const schemaErrors = ((error.errors ?? []) as unknown[]).filter(
      (item) => typeof item === "object" && item !== null && "instancePath" in item,
    ) as SchemaError[];
    if (schemaErrors.length > 0) {
      return toFieldErrors(schemaErrors).map((item) => ({ ...item, message: clip(item.message) }));
    }
  }
  // The package puts the offending name or value in the first line; the rest is boilerplate.
  const message = error instanceof Error ? (error.message.split("\n")[0] ?? "") : String(error);
  return [{ field: "(event)", message: clip(message || "is not a valid CloudEvent") }];
}

/** The job's data, checked against the schema; known fields only, in a fresh object. */
function jobFrom(data: unknown): JobExecutionEvent {
  if (data === undefined) throw invalid("invalid_data", "data", "is required");
  if (!jobValidator.Check(data)) {
    const schemaErrors = (jobValidator.Errors(data) as SchemaError[]).map((error) => {
      const friendly = error.keyword === "pattern" ? PATTERN_MESSAGES[error.instancePath] : undefined;
      return friendly ? { ...error, message: friendly } : error;
    });
    throw new InvalidJobEventError("invalid_data", toFieldErrors(schemaErrors, "data"));
  }
  const valid = data as JobExecutionEvent;
  const job: JobExecutionEvent = {
    job_id: valid.job_id,
    trace_id: valid.trace_id,
    agent_definition: valid.agent_definition,
    input_payload: valid.input_payload,
  };
  if (valid.organization_id !== undefined) job.organization_id = valid.organization_id;
  return job;
}

function incoming(parsed: Parsed): IncomingJob {
  // The package defaults a missing specversion to 1.0 and a missing id to a fresh UUID, and
  // validate() answers false rather than throwing for other versions: check them first.
  if (parsed.specversion === undefined) throw invalid("spec_version", "specversion", "is required");
  if (parsed.specversion !== V1) {
    throw invalid(
      "spec_version",
      "specversion",
      `must be "${V1}", not ${clip(JSON.stringify(parsed.specversion))}`,
    );
  }
  if (parsed.id === undefined || parsed.id === "") throw invalid("invalid_event", "id", "is required");

  let event: CloudEvent<unknown>;
  try {
    const converted = HTTP.toEvent(parsed.message);
    if (Array.isArray(converted)) throw invalid("not_cloudevent", "(event)", "batches are not accepted");
    // toEvent does not validate, and it replaces an unparseable time with now: put the time
    // back as sent so that validation judges it.
    event = new CloudEvent({ ...converted, time: parsed.time as string | undefined }, false);
    if (!event.validate()) throw invalid("spec_version", "specversion", `must be "${V1}"`);
  } catch (error) {
    if (error instanceof InvalidJobEventError) throw error;
    const errors = attributeErrors(error);
    throw new InvalidJobEventError("invalid_event", errors);
  }

  const contentType = mediaType(parsed.datacontenttype);
  if (contentType !== undefined && !isJsonMediaType(contentType)) {
    throw invalid("not_json", "datacontenttype", `must be a JSON media type, not ${clip(contentType)}`);
  }
  const job = jobFrom(parsed.data());

  const cloudEvent: IncomingJob["cloudEvent"] = { id: event.id, source: event.source, type: event.type };
  if (typeof event.subject === "string") cloudEvent.subject = event.subject;
  if (parsed.time !== undefined) cloudEvent.time = new Date(event.time as string).toISOString();
  return { cloudEvent, job };
}

/**
 * Picks the content mode as the HTTP binding does: a cloudevents media type means structured,
 * ce-* headers mean binary. Without either, `otherwise` decides.
 */
function parse(delivery: Delivery, otherwise: "structured" | "none"): IncomingJob {
  const type = mediaType(delivery.headers[CONSTANTS.HEADER_CONTENT_TYPE]);
  if (type === CONSTANTS.MIME_CE_BATCH)
    throw invalid("not_cloudevent", "content-type", "batches are not accepted");
  if (type?.startsWith(CONSTANTS.MIME_CE)) {
    if (type !== CONSTANTS.MIME_CE_JSON) {
      throw invalid("not_cloudevent", "content-type", `event format ${clip(type)} is not supported`);
    }
    return incoming(fromStructured(delivery));
  }
  if (hasEventHeaders(delivery.headers)) return incoming(fromBinary(delivery));
  if (otherwise === "structured") return incoming(fromStructured(delivery));
  throw invalid(
    "not_cloudevent",
    "(request)",
    "is not a CloudEvent: send ce-* headers (binary mode) or Content-Type application/cloudevents+json (structured mode)",
  );
}

/** From an HTTP request's headers and raw body (string or Buffer), binary or structured mode. */
export function jobFromHttp(
  headers: Record<string, string | string[] | undefined>,
  body: string | Buffer,
): IncomingJob {
  return parse({ headers: eventHeaders(headers), body }, "none");
}

/**
 * From a NATS message: its data and headers (as a plain record of header name → values).
 * Binary mode when it has ce-* headers, otherwise a structured event in the body, whatever
 * its content type says: NATS publishers rarely set one.
 */
export function jobFromNats(data: Uint8Array, headers: Record<string, string[]>): IncomingJob {
  return parse({ headers: eventHeaders(headers), body: data }, "structured");
}

export type JobOutcome =
  | { kind: "completed"; result: unknown }
  | { kind: "failed"; error: { message: string; type: string; stack_trace?: string } };

const TRACE_ID = /^(?!0{32}$)[0-9a-f]{32}$/;

function spanId(): string {
  for (;;) {
    const id = randomBytes(8).toString("hex");
    if (id !== "0000000000000000") return id;
  }
}

/**
 * The result CloudEvent: id deterministic per job and kind (so a retried publish is recognisably
 * the same), source `steward`, time now. Its traceparent continues the job's trace with a new
 * span; a job without a valid trace id (reporting on a malformed job) starts a new trace.
 */
export function resultEvent(
  job: Pick<JobExecutionEvent, "job_id" | "trace_id">,
  outcome: JobOutcome,
  source = "steward",
): CloudEvent<Record<string, unknown>> {
  const traceId = TRACE_ID.test(job.trace_id) ? job.trace_id : randomBytes(16).toString("hex");
  let data: Record<string, unknown>;
  if (outcome.kind === "completed") {
    // undefined would vanish from the JSON; null keeps `result` present for consumers.
    data = { job_id: job.job_id, result: outcome.result === undefined ? null : outcome.result };
  } else {
    const error: Record<string, unknown> = { message: outcome.error.message, type: outcome.error.type };
    if (outcome.error.stack_trace !== undefined) error.stack_trace = outcome.error.stack_trace;
    data = { job_id: job.job_id, error };
  }
  return new CloudEvent<Record<string, unknown>>({
    // "/" cannot occur in a job id, so distinct (job, kind) pairs never share an id.
    id: `${job.job_id}/${outcome.kind}`,
    source,
    type: outcome.kind === "completed" ? JOB_COMPLETED_TYPE : JOB_FAILED_TYPE,
    // An empty subject is invalid in a CloudEvent; only a malformed job has an empty id.
    ...(job.job_id ? { subject: job.job_id } : {}),
    time: new Date().toISOString(),
    datacontenttype: CONSTANTS.MIME_JSON,
    data,
    traceparent: `00-${traceId}-${spanId()}-01`,
  });
}

/** Structured-mode JSON bytes of a CloudEvent (for NATS bodies and HTTP answers). */
export function structuredBytes(event: CloudEvent<unknown>): Uint8Array {
  const { body } = HTTP.structured(event);
  return new TextEncoder().encode(typeof body === "string" ? body : JSON.stringify(body));
}

/**
 * The CloudEvent that submits a job (used by POST /api/v1/jobs when publishing to JetStream,
 * and by tests): type `steward.job.execute`, source given, subject the job id, id derived from
 * the job id so a retried submission is recognisably the same. Refuses a job that jobFromNats
 * would refuse.
 */
export function jobSubmission(job: JobExecutionEvent, source: string): CloudEvent<JobExecutionEvent> {
  const checked = jobFrom(job);
  try {
    return new CloudEvent<JobExecutionEvent>({
      id: `${checked.job_id}/submitted`,
      source,
      type: JOB_EXECUTE_TYPE,
      subject: checked.job_id,
      time: new Date().toISOString(),
      datacontenttype: CONSTANTS.MIME_JSON,
      data: checked,
    });
  } catch (error) {
    throw new InvalidJobEventError("invalid_event", attributeErrors(error));
  }
}
