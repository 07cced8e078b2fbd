import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ValidationError } from "../../src/errors.js";
import {
  InvalidJobEventError,
  type JobExecutionEvent,
  jobFromHttp,
  jobFromNats,
  jobSubmission,
  resultEvent,
  structuredBytes,
} from "../../src/executor/job-event.js";

const TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";

const job: JobExecutionEvent = {
  job_id: "job_01.a:b-c",
  trace_id: TRACE_ID,
  agent_definition: { nodes: [{ id: "start" }], edges: [] },
  input_payload: { question: "why?", n: [1, 2.5, null, true] },
};

const attributes = {
  specversion: "1.0",
  id: "evt-1",
  source: "/tests",
  type: "steward.job.execute",
  subject: "s-1",
};

const binaryHeaders = (overrides: Record<string, string | undefined> = {}): Record<string, string> => {
  const headers: Record<string, string | undefined> = {
    "ce-specversion": "1.0",
    "ce-id": "evt-1",
    "ce-source": "/tests",
    "ce-type": "steward.job.execute",
    "ce-subject": "s-1",
    "content-type": "application/json",
    ...overrides,
  };
  return Object.fromEntries(Object.entries(headers).filter(([, value]) => value !== undefined)) as Record<
    string,
    string
  >;
};

const structured = (event: Record<string, unknown>): string => JSON.stringify(event);
const CE_JSON = { "content-type": "application/cloudevents+json" };
const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const asNatsHeaders = (headers: Record<string, string>): Record<string, string[]> =>
  Object.fromEntries(Object.entries(headers).map(([name, value]) => [name, [value]]));

/** The InvalidJobEventError a call throws; fails the test when it throws anything else or nothing. */
function rejection(call: () => unknown): InvalidJobEventError {
  try {
    call();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidJobEventError);
    return error as InvalidJobEventError;
  }
  throw new Error("expected an InvalidJobEventError, but the call succeeded");
}

const fields = (error: InvalidJobEventError): string[] => error.errors.map((item) => item.field);

describe("happy path: every transport and mode yields the same job", () => {
  const expected = {
    cloudEvent: { id: "evt-1", source: "/tests", type: "steward.job.execute", subject: "s-1" },
    job,
  };

  it.each([
    ["HTTP binary, string body", () => jobFromHttp(binaryHeaders(), JSON.stringify(job))],
    ["HTTP binary, Buffer body", () => jobFromHttp(binaryHeaders(), Buffer.from(JSON.stringify(job)))],
    [
      "HTTP structured",
      () =>
        jobFromHttp(CE_JSON, structured({ ...attributes, datacontenttype: "application/json", data: job })),
    ],
    [
      "HTTP structured, charset and upper case",
      () =>
        jobFromHttp(
          { "Content-Type": "Application/CloudEvents+JSON;charset=UTF-8" },
          Buffer.from(structured({ ...attributes, data: job })),
        ),
    ],
    ["NATS structured", () => jobFromNats(bytes(structured({ ...attributes, data: job })), {})],
    [
      "NATS binary, canonical header names",
      () =>
        jobFromNats(bytes(JSON.stringify(job)), {
          "Ce-Specversion": ["1.0"],
          "Ce-Id": ["evt-1"],
          "Ce-Source": ["/tests"],
          "Ce-Type": ["steward.job.execute"],
          "Ce-Subject": ["s-1"],
          "Nats-Msg-Id": ["whatever"],
        }),
    ],
    [
      "structured with data_base64",
      () =>
        jobFromNats(
          bytes(
            structured({ ...attributes, data_base64: Buffer.from(JSON.stringify(job)).toString("base64") }),
          ),
          {},
        ),
    ],
  ])("%s", (_mode, parse) => {
    expect(parse()).toStrictEqual(expected);
  });

  it("binary mode without a content type reads the body as JSON", () => {
    expect(jobFromHttp(binaryHeaders({ "content-type": undefined }), JSON.stringify(job)).job).toStrictEqual(
      job,
    );
  });

  it("accepts a vendor +json data content type", () => {
    const headers = binaryHeaders({ "content-type": "application/vnd.steward.job+json; charset=utf-8" });
    expect(jobFromHttp(headers, JSON.stringify(job)).job).toStrictEqual(job);
  });

  it("keeps organization_id and drops fields it does not know", () => {
    const data = { ...job, organization_id: "org_1", future_field: 1 };
    expect(jobFromHttp(binaryHeaders(), JSON.stringify(data)).job).toStrictEqual({
      ...job,
      organization_id: "org_1",
    });
  });

  it("accepts null input_payload: present, just empty", () => {
    const data = { ...job, input_payload: null };
    expect(jobFromNats(bytes(structured({ ...attributes, data })), {}).job.input_payload).toBeNull();
  });

  it("reports time as sent, normalised to UTC, and leaves it out when absent", () => {
    const timed = jobFromHttp(binaryHeaders({ "ce-time": "2024-05-01T12:00:00+02:00" }), JSON.stringify(job));
    expect(timed.cloudEvent.time).toBe("2024-05-01T10:00:00.000Z");
    expect(jobFromHttp(binaryHeaders(), JSON.stringify(job)).cloudEvent).not.toHaveProperty("time");
  });

  it("repeated identical header values are one value", () => {
    const headers = { ...asNatsHeaders(binaryHeaders()), "ce-id": ["evt-1", "evt-1"] };
    expect(jobFromNats(bytes(JSON.stringify(job)), headers).cloudEvent.id).toBe("evt-1");
  });
});

describe("errors: the data is not a JobExecutionEvent", () => {
  const required = ["job_id", "trace_id", "agent_definition", "input_payload"] as const;

  it.each(required)("missing %s over HTTP binary names data.%s", (field) => {
    const { [field]: _dropped, ...data } = job;
    const error = rejection(() => jobFromHttp(binaryHeaders(), JSON.stringify(data)));
    expect(error.reason).toBe("invalid_data");
    expect(error.errors).toContainEqual({ field: `data.${field}`, message: "is required" });
    expect(error.message).toContain(`data.${field}`);
  });

  it.each(required)("missing %s over NATS structured names data.%s", (field) => {
    const { [field]: _dropped, ...data } = job;
    const error = rejection(() => jobFromNats(bytes(structured({ ...attributes, data })), {}));
    expect(fields(error)).toEqual([`data.${field}`]);
  });

  it("names every missing field at once", () => {
    const error = rejection(() => jobFromNats(bytes(structured({ ...attributes, data: {} })), {}));
    expect(fields(error).sort()).toEqual(required.map((field) => `data.${field}`).sort());
  });

  it("missing data is named data", () => {
    expect(fields(rejection(() => jobFromNats(bytes(structured(attributes)), {})))).toEqual(["data"]);
    const empty = rejection(() => jobFromHttp(binaryHeaders(), ""));
    expect(empty.reason).toBe("invalid_data");
    expect(empty.errors).toEqual([{ field: "data", message: "is required" }]);
  });

  it.each([
    ["all zeros", "0".repeat(32)],
    ["upper case", TRACE_ID.toUpperCase()],
    ["31 digits", TRACE_ID.slice(1)],
    ["33 digits", `${TRACE_ID}0`],
    ["not hex", `${TRACE_ID.slice(1)}g`],
    ["a traceparent", `00-${TRACE_ID}-00f067aa0ba902b7-01`],
    ["a number", 42],
  ])("bad trace_id (%s) is named data.trace_id", (_case, trace_id) => {
    const error = rejection(() => jobFromHttp(binaryHeaders(), JSON.stringify({ ...job, trace_id })));
    expect(fields(error)).toEqual(["data.trace_id"]);
  });

  it("explains a bad trace_id in words, not as a regular expression", () => {
    const error = rejection(() => jobFromHttp(binaryHeaders(), JSON.stringify({ ...job, trace_id: "x" })));
    expect(error.errors[0]?.message).toBe("must be 32 lower-case hex digits, not all zeros");
  });

  it.each([
    ["empty", ""],
    ["129 characters", "a".repeat(129)],
    ["a space", "job 1"],
    ["a slash", "job/1"],
  ])("bad job_id (%s) is named data.job_id", (_case, job_id) => {
    const error = rejection(() => jobFromHttp(binaryHeaders(), JSON.stringify({ ...job, job_id })));
    // An empty id breaks two rules; each is reported against the same field.
    expect(new Set(fields(error))).toEqual(new Set(["data.job_id"]));
  });

  it("a 128-character job_id is fine", () => {
    const job_id = "a".repeat(128);
    expect(jobFromHttp(binaryHeaders(), JSON.stringify({ ...job, job_id })).job.job_id).toBe(job_id);
  });

  it.each([
    ["an array", []],
    ["a string", "graph"],
    ["null", null],
  ])("agent_definition as %s is refused", (_case, agent_definition) => {
    const error = rejection(() => jobFromHttp(binaryHeaders(), JSON.stringify({ ...job, agent_definition })));
    expect(fields(error)).toEqual(["data.agent_definition"]);
  });

  it.each([
    ["empty", ""],
    ["65 characters", "o".repeat(65)],
    ["a number", 7],
  ])("organization_id %s is refused", (_case, organization_id) => {
    const error = rejection(() => jobFromHttp(binaryHeaders(), JSON.stringify({ ...job, organization_id })));
    expect(fields(error)).toEqual(["data.organization_id"]);
  });

  it.each([
    ["an array", [job]],
    ["a string", "job"],
    ["a JSON string holding the job", JSON.stringify(job)],
  ])("data as %s is refused", (_case, data) => {
    expect(fields(rejection(() => jobFromNats(bytes(structured({ ...attributes, data })), {})))).toEqual([
      "data",
    ]);
    expect(fields(rejection(() => jobFromHttp(binaryHeaders(), JSON.stringify(data))))).toEqual(["data"]);
  });
});

describe("errors: not JSON, wrong spec version, not a CloudEvent", () => {
  it.each([
    ["plain text", "hello"],
    ["truncated JSON", JSON.stringify(job).slice(0, 20)],
    ["a bare number", "12 34"],
  ])("binary data that is %s is not JSON", (_case, body) => {
    const error = rejection(() => jobFromHttp(binaryHeaders(), body));
    expect(error.reason).toBe("not_json");
    expect(fields(error)).toEqual(["data"]);
  });

  it("a structured body that is not JSON", () => {
    const error = rejection(() => jobFromHttp(CE_JSON, "{not json"));
    expect(error.reason).toBe("not_json");
    expect(rejection(() => jobFromNats(bytes("{not json"), {})).reason).toBe("not_json");
  });

  it("bytes that are not UTF-8 are not JSON, even inside a string", () => {
    // Decoding leniently would turn 0xFF into U+FFFD and accept the job with altered input.
    const [before, after] = JSON.stringify({ ...job, input_payload: "SPLIT" }).split("SPLIT") as [
      string,
      string,
    ];
    const data = Buffer.concat([Buffer.from(before), Buffer.from([0xff]), Buffer.from(after)]);
    expect(rejection(() => jobFromHttp(binaryHeaders(), data)).reason).toBe("not_json");
    const [head, tail] = structured({ ...attributes, data: "SPLIT" }).split('"SPLIT"') as [string, string];
    const event = Buffer.concat([
      Buffer.from(`${head}${before}`),
      Buffer.from([0xff]),
      Buffer.from(`${after}${tail}`),
    ]);
    expect(rejection(() => jobFromNats(event, {})).reason).toBe("not_json");
  });

  it("data_base64 that does not hold JSON", () => {
    const event = { ...attributes, data_base64: Buffer.from("not json").toString("base64") };
    const error = rejection(() => jobFromNats(bytes(structured(event)), {}));
    expect(error.reason).toBe("not_json");
    expect(fields(error)).toEqual(["data_base64"]);
  });

  it("a data content type that is not JSON", () => {
    const error = rejection(() =>
      jobFromHttp(binaryHeaders({ "content-type": "text/plain" }), JSON.stringify(job)),
    );
    expect(error.reason).toBe("not_json");
    expect(fields(error)).toEqual(["datacontenttype"]);
    const event = { ...attributes, datacontenttype: "application/xml", data: job };
    expect(fields(rejection(() => jobFromNats(bytes(structured(event)), {})))).toEqual(["datacontenttype"]);
  });

  it.each([
    ["HTTP binary 0.3", () => jobFromHttp(binaryHeaders({ "ce-specversion": "0.3" }), JSON.stringify(job))],
    [
      "HTTP binary missing",
      () => jobFromHttp(binaryHeaders({ "ce-specversion": undefined }), JSON.stringify(job)),
    ],
    [
      "HTTP structured 0.3",
      () => jobFromHttp(CE_JSON, structured({ ...attributes, specversion: "0.3", data: job })),
    ],
    [
      "NATS structured missing",
      () => jobFromNats(bytes(structured({ ...attributes, specversion: undefined, data: job })), {}),
    ],
    [
      "NATS structured as a number",
      () => jobFromNats(bytes(structured({ ...attributes, specversion: 1, data: job })), {}),
    ],
    [
      "NATS binary 2.0",
      () =>
        jobFromNats(bytes(JSON.stringify(job)), asNatsHeaders(binaryHeaders({ "ce-specversion": "2.0" }))),
    ],
  ])("specversion %s is refused", (_case, parse) => {
    const error = rejection(parse);
    expect(error.reason).toBe("spec_version");
    expect(fields(error)).toEqual(["specversion"]);
  });

  it("says which specversion it got", () => {
    const error = rejection(() =>
      jobFromHttp(binaryHeaders({ "ce-specversion": "0.3" }), JSON.stringify(job)),
    );
    expect(error.errors[0]?.message).toBe('must be "1.0", not "0.3"');
  });

  it.each([
    ["id", { id: undefined }, "id"],
    ["empty id", { id: "" }, "id"],
    ["source", { source: undefined }, "source"],
    ["type", { type: undefined }, "type"],
  ])("a structured event without %s is refused", (_case, overrides, field) => {
    const error = rejection(() =>
      jobFromNats(bytes(structured({ ...attributes, ...overrides, data: job })), {}),
    );
    expect(error.reason).toBe("invalid_event");
    expect(fields(error)).toEqual([field]);
  });

  it.each([
    ["ce-id", "id"],
    ["ce-source", "source"],
    ["ce-type", "type"],
  ])("a binary event without %s is refused", (header, field) => {
    const error = rejection(() => jobFromHttp(binaryHeaders({ [header]: undefined }), JSON.stringify(job)));
    expect(fields(error)).toEqual([field]);
  });

  it("a time that is not RFC 3339 is refused, not replaced by now", () => {
    const error = rejection(() =>
      jobFromHttp(binaryHeaders({ "ce-time": "yesterday" }), JSON.stringify(job)),
    );
    expect(fields(error)).toEqual(["time"]);
    const event = { ...attributes, time: "2024-13-45", data: job };
    expect(fields(rejection(() => jobFromNats(bytes(structured(event)), {})))).toEqual(["time"]);
  });

  it("an extension name the spec forbids is refused", () => {
    const error = rejection(() => jobFromHttp(binaryHeaders({ "ce-my-ext": "1" }), JSON.stringify(job)));
    expect(error.reason).toBe("invalid_event");
    expect(error.message).toContain("my-ext");
  });

  it("a 0.3-only attribute on a 1.0 event is refused", () => {
    const event = { ...attributes, schemaurl: "https://example.com/s", data: job };
    expect(rejection(() => jobFromNats(bytes(structured(event)), {})).reason).toBe("invalid_event");
  });

  it("an HTTP request without ce-* headers or a CloudEvents content type is not a CloudEvent", () => {
    const error = rejection(() => jobFromHttp({ "content-type": "application/json" }, JSON.stringify(job)));
    expect(error.reason).toBe("not_cloudevent");
    // Over HTTP a structured event needs its media type; NATS has no such convention.
    const event = structured({ ...attributes, data: job });
    expect(rejection(() => jobFromHttp({ "content-type": "application/json" }, event)).reason).toBe(
      "not_cloudevent",
    );
    expect(rejection(() => jobFromHttp({}, event)).reason).toBe("not_cloudevent");
  });

  it("data and data_base64 together are refused", () => {
    const event = {
      ...attributes,
      data: job,
      data_base64: Buffer.from(JSON.stringify(job)).toString("base64"),
    };
    expect(fields(rejection(() => jobFromNats(bytes(structured(event)), {})))).toEqual(["data_base64"]);
  });

  it("a bare job or a non-object published on NATS is not a CloudEvent", () => {
    expect(rejection(() => jobFromNats(bytes(JSON.stringify(job)), {})).reason).toBe("not_cloudevent");
    expect(rejection(() => jobFromNats(bytes("[1,2]"), {})).reason).toBe("not_cloudevent");
  });

  it("batches and other event formats are refused", () => {
    const batch = JSON.stringify([{ ...attributes, data: job }]);
    const batchType = { "content-type": "application/cloudevents-batch+json" };
    expect(rejection(() => jobFromHttp(batchType, batch)).message).toContain("batches are not accepted");
    expect(rejection(() => jobFromNats(bytes(batch), asNatsHeaders(batchType))).reason).toBe(
      "not_cloudevent",
    );
    const avro = { "content-type": "application/cloudevents+avro" };
    expect(rejection(() => jobFromHttp(avro, "x")).reason).toBe("not_cloudevent");
  });

  it("a header given twice with different values is refused", () => {
    const headers = { ...asNatsHeaders(binaryHeaders()), "ce-id": ["evt-1", "evt-2"] };
    expect(fields(rejection(() => jobFromNats(bytes(JSON.stringify(job)), headers)))).toEqual(["ce-id"]);
  });

  it("is a ValidationError, so the HTTP layer answers 400 with the field errors", () => {
    const error = rejection(() => jobFromHttp(binaryHeaders(), "{}"));
    expect(error).toBeInstanceOf(ValidationError);
    expect(error.code).toBe("VALIDATION_ERROR");
    expect(error.details).toEqual({ errors: error.errors });
  });

  it("never echoes a large body", () => {
    const huge = `x${"A".repeat(100_000)}`;
    const cases = [
      () => jobFromHttp(binaryHeaders(), huge),
      () => jobFromHttp(CE_JSON, huge),
      () => jobFromHttp(binaryHeaders({ "ce-time": huge }), JSON.stringify(job)),
      () => jobFromHttp(binaryHeaders({ "content-type": `text/${huge}` }), JSON.stringify(job)),
      () => jobFromNats(bytes(structured({ ...attributes, specversion: huge })), {}),
      () => jobFromNats(bytes(structured({ ...attributes, data: { ...job, job_id: huge } })), {}),
    ];
    for (const parse of cases) {
      const error = rejection(parse);
      expect(error.message.length).toBeLessThan(300);
      for (const item of error.errors) expect(item.message.length).toBeLessThan(300);
    }
  });
});

describe("security: __proto__ keys", () => {
  // An object literal's "__proto__" key sets the prototype instead of adding a key, so the JSON is built as text.
  const PROTO = '"__proto__":{"polluted":"yes","job_id":"evil"}';
  const polluting = (where: "attributes" | "data" | "input"): string => {
    let data = JSON.stringify({ ...job, input_payload: "INPUT" });
    data = data.replace(
      '"INPUT"',
      where === "input" ? `{${PROTO},"a":1}` : JSON.stringify(job.input_payload),
    );
    if (where === "data") data = `{${PROTO},${data.slice(1)}`;
    const head = where === "attributes" ? `{${PROTO},` : "{";
    return `${head}"specversion":"1.0","id":"e","source":"/s","type":"t","data":${data}}`;
  };

  it.each(["attributes", "data", "input"] as const)("in %s do not pollute Object.prototype", (where) => {
    const body = polluting(where);
    expect(body).toContain("__proto__");
    const fromHttp = jobFromHttp(CE_JSON, body);
    const fromNats = jobFromNats(bytes(body), {});
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    for (const parsed of [fromHttp, fromNats]) {
      expect(parsed.job.job_id).toBe(job.job_id);
      expect((parsed.job as unknown as Record<string, unknown>).polluted).toBeUndefined();
      expect(Object.getPrototypeOf(parsed.job)).toBe(Object.prototype);
      expect(Object.hasOwn(parsed.job, "__proto__")).toBe(false);
    }
    if (where === "input") {
      const input = fromNats.job.input_payload as Record<string, unknown>;
      // JSON semantics: an ordinary own key, not the object's prototype.
      expect(Object.hasOwn(input, "__proto__")).toBe(true);
      expect(Object.getPrototypeOf(input)).toBe(Object.prototype);
      expect(input.polluted).toBeUndefined();
    }
  });

  it("an attribute named __proto__ is ignored, whatever it holds", () => {
    // The package copies attributes by assignment; this one would become the prototype of its
    // working object and its datacontentencoding would send parsing down the base64 path.
    const body = `{"__proto__":{"datacontentencoding":"base64"},${structured({ ...attributes, data: job }).slice(1)}`;
    expect(jobFromNats(bytes(body), {}).job).toStrictEqual(job);
  });

  it("in binary data do not pollute Object.prototype", () => {
    const body = `{${PROTO},${JSON.stringify(job).slice(1)}`;
    const parsed = jobFromHttp(binaryHeaders(), body);
    expect(parsed.job).toStrictEqual(job);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe("resultEvent", () => {
  const TRACEPARENT = new RegExp(`^00-${TRACE_ID}-([0-9a-f]{16})-01$`);

  it("completed: type, subject, source, data and a traceparent continuing the job's trace", () => {
    const before = Date.now();
    const event = resultEvent(job, { kind: "completed", result: { answer: 42 } });
    expect(event.type).toBe("agent.status.completed");
    expect(event.subject).toBe(job.job_id);
    expect(event.source).toBe("steward");
    expect(event.specversion).toBe("1.0");
    expect(event.datacontenttype).toBe("application/json");
    expect(event.data).toStrictEqual({ job_id: job.job_id, result: { answer: 42 } });
    const span = TRACEPARENT.exec(event.traceparent as string)?.[1];
    expect(span).toBeDefined();
    expect(span).not.toBe("0000000000000000");
    expect(Date.parse(event.time as string)).toBeGreaterThanOrEqual(before - 1);
    expect(Date.parse(event.time as string)).toBeLessThanOrEqual(Date.now() + 1);
  });

  it("failed: type and error data, stack_trace only when given", () => {
    const event = resultEvent(
      job,
      { kind: "failed", error: { message: "boom", type: "AgentError", stack_trace: "at x" } },
      "steward-worker-1",
    );
    expect(event.type).toBe("agent.status.failed");
    expect(event.subject).toBe(job.job_id);
    expect(event.source).toBe("steward-worker-1");
    expect(event.traceparent).toMatch(TRACEPARENT);
    expect(event.data).toStrictEqual({
      job_id: job.job_id,
      error: { message: "boom", type: "AgentError", stack_trace: "at x" },
    });
    const bare = resultEvent(job, { kind: "failed", error: { message: "boom", type: "AgentError" } });
    expect(bare.data).toStrictEqual({ job_id: job.job_id, error: { message: "boom", type: "AgentError" } });
  });

  it("an undefined result is sent as null, so the key is never missing", () => {
    const event = resultEvent(job, { kind: "completed", result: undefined });
    const parsed = JSON.parse(new TextDecoder().decode(structuredBytes(event)));
    expect(parsed.data).toStrictEqual({ job_id: job.job_id, result: null });
  });

  it("id is the same for the same job and kind, and differs otherwise; each event is a new span", () => {
    const outcomeA = { kind: "completed", result: 1 } as const;
    const first = resultEvent(job, outcomeA);
    const again = resultEvent(job, { kind: "completed", result: 2 });
    const failed = resultEvent(job, { kind: "failed", error: { message: "m", type: "t" } });
    const other = resultEvent({ ...job, job_id: "job_2" }, outcomeA);
    expect(again.id).toBe(first.id);
    expect(failed.id).not.toBe(first.id);
    expect(other.id).not.toBe(first.id);
    expect(again.traceparent).not.toBe(first.traceparent);
  });

  it("ids never collide across jobs and kinds", () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[A-Za-z0-9._:-]{1,40}$/),
        fc.stringMatching(/^[A-Za-z0-9._:-]{1,40}$/),
        (a, b) => {
          fc.pre(a !== b);
          const ids = new Set(
            [a, b].flatMap((job_id) => [
              resultEvent({ job_id, trace_id: TRACE_ID }, { kind: "completed", result: null }).id,
              resultEvent(
                { job_id, trace_id: TRACE_ID },
                { kind: "failed", error: { message: "", type: "" } },
              ).id,
            ]),
          );
          expect(ids.size).toBe(4);
        },
      ),
    );
  });

  it("a job without a valid trace id still gets a well-formed traceparent", () => {
    const event = resultEvent({ job_id: "j", trace_id: "nope" }, { kind: "completed", result: null });
    expect(event.traceparent).toMatch(/^00-(?!0{32})[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  });

  it("structured bytes carry every attribute, traceparent included", () => {
    const event = resultEvent(job, { kind: "completed", result: [1] });
    const parsed = JSON.parse(new TextDecoder().decode(structuredBytes(event)));
    expect(parsed).toStrictEqual({
      specversion: "1.0",
      id: event.id,
      source: "steward",
      type: "agent.status.completed",
      subject: job.job_id,
      time: event.time,
      datacontenttype: "application/json",
      traceparent: event.traceparent,
      data: { job_id: job.job_id, result: [1] },
    });
  });
});

describe("jobSubmission and structuredBytes", () => {
  it("is a steward.job.execute event from the given source, about the job", () => {
    const event = jobSubmission(job, "/api/v1/jobs");
    expect(event.type).toBe("steward.job.execute");
    expect(event.source).toBe("/api/v1/jobs");
    expect(event.subject).toBe(job.job_id);
    expect(event.specversion).toBe("1.0");
    expect(event.data).toStrictEqual(job);
    expect(jobSubmission(job, "/elsewhere").id).toBe(event.id);
  });

  it("round-trips through jobFromNats and jobFromHttp", () => {
    const event = jobSubmission({ ...job, organization_id: "org_1" }, "/api/v1/jobs");
    const body = structuredBytes(event);
    const expected = {
      cloudEvent: {
        id: event.id,
        source: "/api/v1/jobs",
        type: "steward.job.execute",
        subject: job.job_id,
        time: event.time,
      },
      job: { ...job, organization_id: "org_1" },
    };
    expect(jobFromNats(body, {})).toStrictEqual(expected);
    expect(jobFromHttp(CE_JSON, Buffer.from(body))).toStrictEqual(expected);
  });

  it("refuses a job that the executor would refuse", () => {
    const error = rejection(() => jobSubmission({ ...job, trace_id: "0".repeat(32) }, "/api/v1/jobs"));
    expect(fields(error)).toEqual(["data.trace_id"]);
  });

  it("refuses a source the spec forbids", () => {
    expect(rejection(() => jobSubmission(job, "")).reason).toBe("invalid_event");
  });
});

describe("properties", () => {
  // Values as JSON can carry them: fc.jsonValue() also yields -0, which JSON writes as 0.
  const wireJson = fc.jsonValue().map((value) => JSON.parse(JSON.stringify(value)) as unknown);
  const validJob: fc.Arbitrary<JobExecutionEvent> = fc.record(
    {
      job_id: fc.stringMatching(/^[A-Za-z0-9._:-]{1,128}$/),
      trace_id: fc.stringMatching(/^[0-9a-f]{32}$/).filter((id) => !/^0+$/.test(id)),
      agent_definition: fc.dictionary(fc.string(), wireJson, { noNullPrototype: true }),
      input_payload: wireJson,
      organization_id: fc.string({ minLength: 1, maxLength: 64 }),
    },
    { requiredKeys: ["job_id", "trace_id", "agent_definition", "input_payload"], noNullPrototype: true },
  );

  it("any valid JobExecutionEvent survives jobSubmission → structuredBytes → jobFromNats unchanged", () => {
    fc.assert(
      fc.property(validJob, (generated) => {
        const received = jobFromNats(structuredBytes(jobSubmission(generated, "/prop")), {});
        expect(received.job).toStrictEqual(generated);
      }),
      { numRuns: 300 },
    );
  });

  it("arbitrary bytes or JSON over NATS are either a job or an InvalidJobEventError", () => {
    const body = fc.oneof(
      fc.uint8Array({ maxLength: 200 }),
      fc.jsonValue().map((value) => bytes(JSON.stringify(value))),
      fc
        .record({ specversion: fc.constantFrom("1.0", "0.3", 1), id: fc.string(), data: fc.jsonValue() })
        .map((value) => bytes(JSON.stringify({ ...attributes, ...value }))),
    );
    fc.assert(
      fc.property(body, (data) => {
        try {
          jobFromNats(data, {});
        } catch (error) {
          expect(error).toBeInstanceOf(InvalidJobEventError);
        }
      }),
      { numRuns: 500 },
    );
  });

  it("arbitrary ce-* headers over HTTP are either a job or an InvalidJobEventError", () => {
    const headers = fc.dictionary(
      fc.constantFrom(
        "ce-id",
        "ce-source",
        "ce-type",
        "ce-specversion",
        "ce-time",
        "ce-subject",
        "ce-x",
        "content-type",
      ),
      fc.oneof(fc.string(), fc.constantFrom("1.0", "application/json", "2024-01-01T00:00:00Z")),
    );
    fc.assert(
      fc.property(headers, fc.string(), (candidate, body) => {
        try {
          jobFromHttp(candidate, body);
        } catch (error) {
          expect(error).toBeInstanceOf(InvalidJobEventError);
        }
      }),
      { numRuns: 500 },
    );
  });
});
