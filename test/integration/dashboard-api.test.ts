import { randomBytes } from "node:crypto";
import type { TSchema } from "typebox";
import { Compile } from "typebox/compile";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CreateAgentBody } from "../../src/agents/agent.schemas.js";
import { AUTH_CONFIG_SPECS } from "../../src/agents/auth-config.js";
import { BudgetConfig, RateLimitConfig } from "../../src/agents/governance-config.js";
import { PLATFORM_CONFIG_SPECS } from "../../src/agents/platform-config.js";
import { ApprovalConfig } from "../../src/approvals/approval-config.js";
import { newId } from "../../src/ids.js";
import { slackAgent } from "../helpers/agents.js";
import { type MockAgent, startMockAgent } from "../helpers/mock-agent.js";
import {
  createKey,
  createOrgWithKey,
  invokeEnv,
  registerAgent,
  type StorageKind,
  startTestSteward,
  type TestSteward,
} from "../helpers/steward.js";

/** The two read endpoints the web dashboard builds on: registration forms and activity charts. */

const SCHEMAS = "/api/v1/external-agents/config-schemas";
const ACTIVITY = "/api/v1/governance/activity";
const HOUR = 3_600_000;

interface Bucket {
  start: string;
  decisions: Record<string, number>;
  spend_usd: number;
  invocations: number;
}

const ZERO = { allowed: 0, rate_limited: 0, budget_exceeded: 0, policy_denied: 0, pending_approval: 0 };
const empty = (start: string): Bucket => ({ start, decisions: ZERO, spend_usd: 0, invocations: 0 });

/** The series summed over every bucket. */
function totals(series: Bucket[]) {
  const decisions: Record<string, number> = { ...ZERO };
  let spend = 0;
  let calls = 0;
  for (const bucket of series) {
    for (const [decision, count] of Object.entries(bucket.decisions))
      decisions[decision] = (decisions[decision] ?? 0) + count;
    spend += bucket.spend_usd;
    calls += bucket.invocations;
  }
  return { decisions, spend_usd: spend, invocations: calls };
}

/** What a client sees of a TypeBox schema: the JSON round trip drops its non-enumerable bookkeeping. */
const plain = (schema: TSchema): Record<string, unknown> => JSON.parse(JSON.stringify(schema));

type Json = Record<string, unknown>;

/** The structure of a JSON Schema (property names, types, enums, required), labels left out. */
function shapeOf(schema: Json): unknown {
  const properties = schema.properties as Record<string, Json> | undefined;
  return {
    type: schema.type,
    const: schema.const,
    enum: schema.enum,
    required: schema.required,
    additionalProperties: schema.additionalProperties,
    properties: properties && Object.fromEntries(Object.entries(properties).map(([k, v]) => [k, shapeOf(v)])),
    items: schema.items && shapeOf(schema.items as Json),
    anyOf: (schema.anyOf as Json[] | undefined)?.map(shapeOf),
  };
}

/** Dotted paths of every property of `schema`, nested objects included, with their titles. */
function titlesOf(schema: Json, prefix = ""): Array<[string, unknown]> {
  return Object.entries((schema.properties ?? {}) as Record<string, Json>).flatMap(([name, property]) => [
    [`${prefix}${name}`, property.title] as [string, unknown],
    ...titlesOf(property, `${prefix}${name}.`),
  ]);
}

const fieldsOf = (body: { error: { details?: { errors?: Array<{ field: string }> } } }) =>
  body.error.details?.errors?.map((error) => error.field) ?? [];

describe.each<StorageKind>(["postgres", "embedded"])("dashboard API on %s", (kind) => {
  let t: TestSteward;
  let agent: MockAgent;

  beforeAll(async () => {
    t = await startTestSteward(kind, invokeEnv());
    agent = await startMockAgent();
  });
  afterAll(async () => {
    await t?.close();
    await agent?.close();
  });

  const activity = (query: Record<string, string>, key?: string | null) =>
    t.request({ method: "GET", url: ACTIVITY, query, key });

  /**
   * A call recorded at `at`, written as the invocation service writes one (id and
   * created_at from the same instant): calls in the past cannot be made through the API.
   */
  async function recordCall(
    organizationId: string,
    agentId: string,
    status: string,
    at: string,
    costUsd: number | null = null,
  ) {
    const time = new Date(at);
    await t.steward.database.pool.query(
      `INSERT INTO invocations (id, organization_id, external_agent_id, status, principal_type, principal_id,
         agent_name, agent_endpoint, agent_version, trace_id, span_id, cost_usd, created_at)
       VALUES ($1, $2, $3, $4, 'api_key', 'key_test', 'recorded', 'https://agent.example.com/invoke', 1, $5, $6, $7, $8)`,
      [
        newId("invocation", time.getTime()),
        organizationId,
        agentId,
        status,
        randomBytes(16).toString("hex"),
        randomBytes(8).toString("hex"),
        costUsd,
        time,
      ],
    );
  }

  describe("config schemas", () => {
    it("lists every platform and auth type of the registry with its secret and URL fields", async () => {
      const response = await t.request({ method: "GET", url: SCHEMAS });
      expect(response.statusCode).toBe(200);
      const body = response.json();
      expect(Object.keys(body).sort()).toEqual(["auth_types", "governance", "platforms"]);
      expect(Object.keys(body.platforms).sort()).toEqual(Object.keys(PLATFORM_CONFIG_SPECS).sort());
      expect(Object.keys(body.auth_types).sort()).toEqual(Object.keys(AUTH_CONFIG_SPECS).sort());

      expect(body.platforms.slack).toMatchObject({
        secret_fields: ["webhook_url"],
        url_fields: ["webhook_url"],
      });
      expect(body.platforms.telegram.secret_fields).toEqual(["bot_token"]);
      expect(body.platforms.custom_http.secret_fields).toEqual(["webhook_url", "headers.*"]);
      expect(body.auth_types.oauth2).toMatchObject({
        secret_fields: ["client_secret"],
        url_fields: ["token_url"],
      });
      expect(body.auth_types.none).toMatchObject({ secret_fields: [], url_fields: [] });

      for (const [specs, forms] of [
        [PLATFORM_CONFIG_SPECS, body.platforms],
        [AUTH_CONFIG_SPECS, body.auth_types],
      ] as const) {
        for (const [name, spec] of Object.entries(specs)) {
          const form = forms[name];
          expect(form.secret_fields, name).toEqual(spec.secretPaths);
          expect(form.url_fields, name).toEqual(spec.urlFields);
          // The validating schema itself, unchanged: titles are added, nothing else.
          expect(form.schema, name).toMatchObject(JSON.parse(JSON.stringify(spec.schema)));
        }
      }
    });

    it("labels the form and every field, in plain JSON Schema", async () => {
      const body = (await t.request({ method: "GET", url: SCHEMAS })).json();
      const slack = body.platforms.slack.schema;
      expect(slack).toMatchObject({
        title: "Slack",
        type: "object",
        required: ["webhook_url", "channel"],
        properties: {
          webhook_url: { title: "Webhook URL", type: "string", description: "Slack incoming webhook URL" },
          channel: { title: "Channel", type: "string" },
        },
      });
      expect(body.auth_types.oauth2.schema.properties.client_id.title).toBe("Client ID");
      expect(body.platforms.custom_http.schema.title).toBe("Custom HTTP");
      for (const group of [body.platforms, body.auth_types]) {
        for (const [name, form] of Object.entries<{ schema: Record<string, unknown> }>(group)) {
          expect(typeof form.schema.title, name).toBe("string");
          expect(typeof form.schema.description, name).toBe("string");
          for (const [field, property] of Object.entries<Record<string, unknown>>(
            (form.schema.properties ?? {}) as Record<string, Record<string, unknown>>,
          )) {
            expect(typeof property.title, `${name}.${field}`).toBe("string");
            expect(typeof property.description, `${name}.${field}`).toBe("string");
          }
        }
      }
      expect(JSON.stringify(body)).not.toContain("~kind");
    });

    it("answers the governance forms with the very schemas agent registration validates", async () => {
      const body = (await t.request({ method: "GET", url: SCHEMAS })).json();
      const exported = {
        rate_limit_config: RateLimitConfig,
        budget_config: BudgetConfig,
        approval_config: ApprovalConfig,
      };
      expect(Object.keys(body.governance).sort()).toEqual(Object.keys(exported).sort());
      // What POST /external-agents checks: the same schemas (approval_config also takes null there).
      const create = CreateAgentBody.properties;
      expect(plain(create.rate_limit_config)).toEqual(plain(RateLimitConfig));
      expect(plain(create.budget_config)).toEqual(plain(BudgetConfig));
      expect(plain(create.approval_config).anyOf).toEqual([plain(ApprovalConfig), { type: "null" }]);

      for (const [section, schema] of Object.entries(exported)) {
        const form = body.governance[section];
        expect(form.secret_fields, section).toEqual([]);
        expect(form.url_fields, section).toEqual([]);
        expect(Object.keys(form.schema.properties), section).toEqual(Object.keys(schema.properties));
        expect(shapeOf(form.schema), section).toEqual(shapeOf(plain(schema)));
        // Every constraint kept; titles (and the root's description) are all that is added.
        expect(form.schema, section).toMatchObject(plain(schema));
        for (const [field, title] of titlesOf(form.schema))
          expect(typeof title, `${section}.${field}`).toBe("string");
      }
      expect(body.governance.rate_limit_config.schema).toMatchObject({
        title: "Rate limits",
        properties: {
          requests_per_minute: { title: "Requests per minute", type: "integer" },
          per_user: { title: "Per user", properties: { requests_per_day: { title: "Requests per day" } } },
        },
      });
      expect(body.governance.approval_config.schema).toMatchObject({
        title: "Approval rules",
        required: ["triggers"],
        properties: { triggers: { properties: { rate: { properties: { window: { title: "Window" } } } } } },
      });
      expect(typeof body.governance.budget_config.schema.description).toBe("string");
    });

    it("accepts in registration what its governance forms accept", async () => {
      const body = (await t.request({ method: "GET", url: SCHEMAS })).json();
      const governance = {
        rate_limit_config: { requests_per_minute: 30, per_user: { requests_per_hour: 100 } },
        budget_config: { max_daily_cost: 5, currency: "EUR", enforcement_mode: "soft" },
        approval_config: {
          triggers: { cost_threshold: 1, rate: { max_calls: 5, window: "15m" } },
          workflow: { approver_roles: ["admin"], timeout: 3600, on_timeout: "reject" },
          trusted_users: ["ops@example.com"],
        },
      };
      for (const [section, value] of Object.entries(governance)) {
        const check = Compile(body.governance[section].schema);
        expect(check.Check(value), section).toBe(true);
        expect(check.Check({ ...value, unknown_field: 1 }), section).toBe(false);
      }
      expect(Compile(body.governance.approval_config.schema).Check({ trusted_users: [] })).toBe(false);
      const created = await t.request({
        method: "POST",
        url: "/api/v1/external-agents",
        payload: slackAgent({ name: `governed-${randomBytes(4).toString("hex")}`, ...governance }),
      });
      expect(created.statusCode).toBe(201);
      expect(created.json().approval_config).toMatchObject(governance.approval_config);
    });

    it("validates what registration accepts, so a form generated from it fills a valid agent", async () => {
      const body = (await t.request({ method: "GET", url: SCHEMAS })).json();
      const fixture = slackAgent();
      const platform = Compile(body.platforms.slack.schema);
      const auth = Compile(body.auth_types.oauth2.schema);
      expect(platform.Check(fixture.platform_config)).toBe(true);
      expect(auth.Check(fixture.auth_config)).toBe(true);
      expect(platform.Check({ channel: "#support" })).toBe(false);
      const created = await t.request({
        method: "POST",
        url: "/api/v1/external-agents",
        payload: slackAgent({ name: `form-${randomBytes(4).toString("hex")}` }),
      });
      expect(created.statusCode).toBe(201);
    });

    it("is not taken for an agent id, and /external-agents/{id} still reads agents", async () => {
      const id = await registerAgent(t, agent.url);
      const one = await t.request({ method: "GET", url: `/api/v1/external-agents/${id}` });
      expect(one.statusCode).toBe(200);
      expect(one.json().id).toBe(id);
      const schemas = await t.request({ method: "GET", url: SCHEMAS });
      expect(schemas.json()).toHaveProperty("platforms.slack");
    });

    it("is readable by a viewer and refused without a key", async () => {
      const viewer = await createKey(t, "viewer");
      expect((await t.request({ method: "GET", url: SCHEMAS, key: viewer })).statusCode).toBe(200);
      const anonymous = await t.request({ method: "GET", url: SCHEMAS, key: null });
      expect(anonymous.statusCode).toBe(401);
      expect(anonymous.json().error.code).toBe("UNAUTHORIZED");
    });

    it("is described in the OpenAPI document, like the activity endpoint", async () => {
      const document = (await t.request({ method: "GET", url: "/openapi.json", key: null })).json();
      const schemas = document.paths["/api/v1/external-agents/config-schemas"].get;
      expect(schemas.responses["200"].content["application/json"].schema.properties).toHaveProperty(
        "platforms.properties.slack",
      );
      expect(schemas.responses["200"].content["application/json"].schema.properties).toHaveProperty(
        "governance.properties.approval_config",
      );
      expect(schemas.description).toContain("rate_limit_config");
      const activityPath = document.paths["/api/v1/governance/activity"].get;
      expect(activityPath.description).toContain("approval_expired");
      expect(activityPath.parameters.map((parameter: { name: string }) => parameter.name).sort()).toEqual([
        "agent_id",
        "bucket",
        "from",
        "to",
      ]);
    });
  });

  describe("governance activity", () => {
    it("counts real calls by decision in the current bucket, zeros elsewhere, with the spend", async () => {
      const org = await createOrgWithKey(t, "admin");
      const invoke = (id: string, headers: Record<string, string> = {}) =>
        t.request({
          method: "POST",
          url: `/api/v1/external-agents/${id}/invoke`,
          payload: { input: "hello" },
          headers,
          key: org.key,
        });
      for (const policy of [
        {
          name: "no-untrusted",
          effect: "deny",
          conditions: [{ type: "external_systems", values: ["untrusted"] }],
        },
        { name: "allow-all", effect: "allow", conditions: [] },
      ]) {
        const created = await t.request({
          method: "POST",
          url: "/api/v1/policies",
          key: org.key,
          payload: policy,
        });
        expect(created.statusCode, created.body).toBe(201);
      }
      const limited = await registerAgent(
        t,
        agent.url,
        { rate_limit_config: { requests_per_day: 2 }, budget_config: { cost_per_execution: 0.25 } },
        org.key,
      );
      const capped = await registerAgent(
        t,
        agent.url,
        { budget_config: { cost_per_execution: 1, max_cost_per_invocation: 0.5 } },
        org.key,
      );

      const firstCall = Date.now();
      expect((await invoke(limited, { "x-external-system": "untrusted" })).statusCode).toBe(403);
      expect((await invoke(limited)).statusCode).toBe(200);
      expect((await invoke(limited)).statusCode).toBe(200);
      expect((await invoke(limited)).statusCode).toBe(429);
      expect((await invoke(capped)).statusCode).toBe(402);
      const lastCall = Date.now();

      const asked = Date.now();
      const response = await activity({}, org.key);
      const answered = Date.now();
      expect(response.statusCode, response.body).toBe(200);
      const body = response.json() as { from: string; to: string; bucket: string; series: Bucket[] };
      expect(body.bucket).toBe("hour");
      // The last 24 hours, widened to whole hours: 24 buckets, or 25 unless now is on the hour.
      expect([24, 25]).toContain(body.series.length);
      expect(body.from).toBe(body.series[0]?.start);
      body.series.forEach((bucket, i) => {
        expect(Date.parse(bucket.start)).toBe(Date.parse(body.from) + i * HOUR);
      });
      expect(Date.parse(body.to)).toBe(Date.parse(body.from) + body.series.length * HOUR);
      const current = body.series.at(-1) as Bucket;
      expect(Date.parse(current.start)).toBeLessThanOrEqual(answered);
      expect(Date.parse(current.start) + HOUR).toBeGreaterThan(asked);

      const expected = {
        decisions: { allowed: 2, rate_limited: 1, budget_exceeded: 1, policy_denied: 1, pending_approval: 0 },
        spend_usd: 0.5,
        invocations: 5,
      };
      expect(totals(body.series)).toEqual(expected);
      // Every call sits in the hour it was made in; an hour turning between the calls
      // and the query is the only way they are not all in the current bucket.
      const hourOf = (ms: number) => Math.floor(ms / HOUR) * HOUR;
      for (const bucket of body.series) {
        const start = Date.parse(bucket.start);
        if (start < hourOf(firstCall) || start > hourOf(lastCall))
          expect(bucket).toEqual(empty(bucket.start));
      }
      if (hourOf(firstCall) === hourOf(answered)) {
        expect(current).toEqual({ start: current.start, ...expected });
      }

      // One agent only.
      const limitedOnly = (await activity({ agent_id: limited }, org.key)).json();
      expect(totals(limitedOnly.series)).toEqual({
        decisions: { allowed: 2, rate_limited: 1, budget_exceeded: 0, policy_denied: 1, pending_approval: 0 },
        spend_usd: 0.5,
        invocations: 4,
      });
      const cappedOnly = (await activity({ agent_id: capped }, org.key)).json();
      expect(totals(cappedOnly.series)).toEqual({
        decisions: { ...ZERO, budget_exceeded: 1 },
        spend_usd: 0,
        invocations: 1,
      });

      // A viewer of the organization sees the same; another organization sees none of it.
      const viewer = await createKey(t, "viewer", org.organizationId);
      expect(totals((await activity({}, viewer)).json().series)).toEqual(expected);
      const other = await createOrgWithKey(t, "admin");
      const theirs = (await activity({}, other.key)).json();
      expect(totals(theirs.series)).toEqual({ decisions: ZERO, spend_usd: 0, invocations: 0 });
      const foreign = await activity({ agent_id: limited }, other.key);
      expect(foreign.statusCode).toBe(404);
      expect(foreign.json().error.code).toBe("NOT_FOUND");
      expect((await activity({ agent_id: "agt_missing" }, org.key)).statusCode).toBe(404);
    });

    it("maps every invocation status to its decision and sums the recorded cost", async () => {
      const org = await createOrgWithKey(t, "admin");
      const id = await registerAgent(t, agent.url, {}, org.key);
      const at = "2024-06-04T10:15:00Z";
      const statuses: Array<[string, number | null]> = [
        ["success", 0.25],
        ["failure", 0.5],
        ["timeout", null],
        ["error", null],
        ["running", null],
        ["rate_limited", null],
        ["budget_exceeded", null],
        ["policy_denied", null],
        ["pending_approval", null],
        ["approval_rejected", null],
        ["approval_expired", null],
      ];
      for (const [status, cost] of statuses) await recordCall(org.organizationId, id, status, at, cost);
      const response = await activity(
        { from: "2024-06-04T10:00:00Z", to: "2024-06-04T11:00:00Z", bucket: "hour" },
        org.key,
      );
      expect(response.statusCode, response.body).toBe(200);
      expect(response.json()).toEqual({
        from: "2024-06-04T10:00:00.000Z",
        to: "2024-06-04T11:00:00.000Z",
        bucket: "hour",
        series: [
          {
            start: "2024-06-04T10:00:00.000Z",
            decisions: {
              allowed: 5,
              rate_limited: 1,
              budget_exceeded: 1,
              policy_denied: 1,
              pending_approval: 3,
            },
            spend_usd: 0.75,
            invocations: 11,
          },
        ],
      });
    });

    it("puts each call in the UTC bucket holding it, edges included, for minutes, hours and days", async () => {
      const org = await createOrgWithKey(t, "admin");
      const id = await registerAgent(t, agent.url, {}, org.key);
      const call = (at: string, status = "success") => recordCall(org.organizationId, id, status, at, 1);
      await call("2024-06-04T08:59:59.999Z"); // before the range
      await call("2024-06-04T10:00:00.000Z");
      await call("2024-06-04T10:59:59.999Z", "policy_denied");
      await call("2024-06-04T11:00:00.000Z", "rate_limited");
      await call("2024-06-04T12:00:00.000Z"); // at `to`: after the range

      const hours = (
        await activity({ from: "2024-06-04T09:00:00Z", to: "2024-06-04T12:00:00Z" }, org.key)
      ).json();
      expect(hours.series).toEqual([
        empty("2024-06-04T09:00:00.000Z"),
        {
          start: "2024-06-04T10:00:00.000Z",
          decisions: { ...ZERO, allowed: 1, policy_denied: 1 },
          spend_usd: 2,
          invocations: 2,
        },
        {
          start: "2024-06-04T11:00:00.000Z",
          decisions: { ...ZERO, rate_limited: 1 },
          spend_usd: 1,
          invocations: 1,
        },
      ]);

      // An unaligned range is widened to whole buckets, and the answer says so.
      const widened = (
        await activity({ from: "2024-06-04T09:30:00Z", to: "2024-06-04T11:00:00.001Z" }, org.key)
      ).json();
      expect(widened).toMatchObject({ from: "2024-06-04T09:00:00.000Z", to: "2024-06-04T12:00:00.000Z" });
      expect(widened.series).toEqual(hours.series);

      const minutes = (
        await activity(
          { from: "2024-06-04T10:58:00Z", to: "2024-06-04T11:01:00Z", bucket: "minute" },
          org.key,
        )
      ).json();
      expect(minutes.series.map((bucket: Bucket) => [bucket.start, bucket.invocations])).toEqual([
        ["2024-06-04T10:58:00.000Z", 0],
        ["2024-06-04T10:59:00.000Z", 1],
        ["2024-06-04T11:00:00.000Z", 1],
      ]);

      const days = (
        await activity(
          { from: "2024-06-03T12:00:00+02:00", to: "2024-06-05T00:00:00Z", bucket: "day" },
          org.key,
        )
      ).json();
      expect(days).toMatchObject({ from: "2024-06-03T00:00:00.000Z", to: "2024-06-05T00:00:00.000Z" });
      expect(
        days.series.map((bucket: Bucket) => [bucket.start, bucket.invocations, bucket.spend_usd]),
      ).toEqual([
        ["2024-06-03T00:00:00.000Z", 0, 0],
        ["2024-06-04T00:00:00.000Z", 5, 5],
      ]);
    });

    it("holds up to 500 buckets", async () => {
      const response = await activity({ from: "2024-06-01T00:00:00Z", to: "2024-06-21T20:00:00Z" });
      expect(response.statusCode, response.body).toBe(200);
      expect(response.json().series).toHaveLength(500);
      const minutes = await activity({ bucket: "minute" });
      expect(minutes.statusCode, minutes.body).toBe(200);
      expect([60, 61]).toContain(minutes.json().series.length);
      const days = await activity({ bucket: "day" });
      expect([1, 2]).toContain(days.json().series.length);
    });

    it("answers 400 naming the field for a bad range or bucket", async () => {
      const cases: Array<[Record<string, string>, string]> = [
        [{ from: "yesterday" }, "from"],
        [{ from: "2024-06-04" }, "from"],
        [{ to: "2024-13-01T00:00:00Z" }, "to"],
        [{ bucket: "week" }, "bucket"],
        [{ from: "2024-06-04T11:00:00Z", to: "2024-06-04T11:00:00Z" }, "from"],
        [{ from: "2024-06-04T12:00:00Z", to: "2024-06-04T11:00:00Z" }, "from"],
        [{ from: "2999-01-01T00:00:00Z" }, "from"],
        [{ from: "2024-06-01T00:00:00Z", to: "2024-06-21T20:00:00.001Z" }, "from"],
        [{ from: "2024-01-01T00:00:00Z", to: "2024-01-02T00:00:00Z", bucket: "minute" }, "from"],
        [{ agent: "agt_x" }, "agent"],
      ];
      for (const [query, field] of cases) {
        const response = await activity(query);
        expect(response.statusCode, JSON.stringify(query)).toBe(400);
        expect(response.json().error.code).toBe("VALIDATION_ERROR");
        expect(fieldsOf(response.json()), JSON.stringify(query)).toEqual([field]);
      }
    });

    it("refuses a caller without a key", async () => {
      const response = await activity({}, null);
      expect(response.statusCode).toBe(401);
    });
  });
});
