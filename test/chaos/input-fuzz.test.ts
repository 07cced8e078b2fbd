import { randomBytes } from "node:crypto";
import fc from "fast-check";
import type { LightMyRequestResponse } from "fastify";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it, type TestContext } from "vitest";
import { ERROR_CODES, type ErrorCode } from "../../src/errors.js";
import { STATUS_BY_CODE } from "../../src/http/error-handler.js";
import { until } from "../helpers/eventually.js";
import { SHOUT } from "../helpers/jobs.js";
import { definition } from "../helpers/managed-agents.js";
import { type MockAgent, startMockAgent } from "../helpers/mock-agent.js";
import { TEST_REDIS_URL } from "../helpers/services.js";
import {
  createKey,
  invokeEnv,
  registerAgent,
  startTestSteward,
  type TestSteward,
} from "../helpers/steward.js";
import { jsonRpcErrorCode } from "./json-rpc-error.js";
import {
  allowedTypes,
  type Hints,
  type JsonSchema,
  objectSchema,
  type Site,
  sitesOf,
  unicodeEdge,
  unicodeRefusedBy,
  validValue,
  valueAt,
  withValueAt,
  wrongQueryValue,
  wrongTypeValue,
} from "./openapi-arbitraries.js";
import { changesBetween, observeState, type StateObserver } from "./state-snapshot.js";
import { tally } from "./tally.js";

/**
 * Every operation of Steward's OpenAPI document that takes a body, a query or path
 * parameters, fuzzed from its schemas with fast-check: malformed JSON, wrong content types,
 * wrong types, missing and unknown fields, 1 MB+ strings, 10,000-deep nesting, prototype
 * keys, Unicode edge cases and invalid ids. Each case is invalid by construction and must be
 * answered 4xx with the error envelope; a class of cases leaves the stored state (every table
 * of the schema, every Redis key of the prefix) as it found it, and Object.prototype as well.
 * A last class sends edge values the schemas do allow (NUL, lone surrogates, deep nesting
 * where any JSON goes, an empty patch): never a 5xx for those either.
 */

/** Fixed, so a failure comes back on a rerun; every failure message names it. */
const SEED = 20_251_122;
/** Cases drawn per operation and input class. */
const RUNS = 4;
const ONE_MEGABYTE = 1024 * 1024;
const DEPTH = 10_000;
/** The property a prototype-key payload tries to plant on Object.prototype. */
const PLANTED = "fuzzPolluted";
/** Stands where raw JSON text (deep nesting, a prototype key) is spliced into a body. */
const SPLICE = "fuzz-splice-point";

type Method = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

interface Parameter {
  name: string;
  in: string;
  required?: boolean;
  schema: JsonSchema;
}

interface Operation {
  method: Method;
  path: string;
  pathParams: Parameter[];
  query: Parameter[];
  /** The JSON body's schema; POST / reads its body itself and has none. */
  body?: JsonSchema;
  bodyRequired: boolean;
  takesBody: boolean;
}

/** One request of a class: what is sent, and what was made wrong in it. */
interface Case {
  operation: Operation;
  url: string;
  payload?: string | Buffer;
  contentType?: string;
  what: string;
}

/** What each class expects: refused (4xx, nothing stored) or allowed (anything but a 5xx). */
type Expectation = "refused" | "allowed";

interface Seeded {
  externalAgent: string;
  invocation: string;
  subject: string;
  delivery: string;
  webhook: string;
  approval: string;
  approvalRule: string;
  alertRule: string;
  managedAgent: string;
  job: string;
  policy: string;
  apiKey: string;
  /** Values no error answer may ever carry. */
  secrets: string[];
}

/** Which seeded resource a path parameter names, by the start of the path. */
const RESOURCE_OF_PATH: Array<[string, keyof Omit<Seeded, "secrets">]> = [
  ["/api/v1/external-agents/{id}", "externalAgent"],
  ["/api/v1/invocations/{id}", "invocation"],
  ["/api/v1/lineage/users/{subject}", "subject"],
  ["/api/v1/lineage/{invocation_id}", "invocation"],
  ["/api/v1/deliveries/{id}", "delivery"],
  ["/api/v1/webhooks/{id}", "webhook"],
  ["/api/v1/approvals/{id}", "approval"],
  ["/api/v1/approval-rules/{id}", "approvalRule"],
  ["/api/v1/agents/alert-rules/{ruleId}", "alertRule"],
  ["/api/v1/agents/{id}", "managedAgent"],
  ["/api/v1/jobs/{id}", "job"],
  ["/api/v1/policies/{id}", "policy"],
  ["/api/v1/api-keys/{id}", "apiKey"],
];

let t: TestSteward;
let agent: MockAgent;
let redis: Redis;
let state: StateObserver;
let seeded: Seeded;
let operations: Operation[];
let hints: Hints;
let prototypeNames: string;

beforeAll(async () => {
  agent = await startMockAgent();
  const env = invokeEnv();
  t = await startTestSteward("postgres", env);
  redis = new Redis(TEST_REDIS_URL);
  seeded = await seed();
  state = await observeState(t.steward.database.schema, redis, env.STEWARD_REDIS_PREFIX ?? "");
  operations = await fuzzedOperations();
  hints = {
    webhook_url: fc.constant(agent.url),
    url: fc.constant(agent.url),
    callback_url: fc.constant(agent.url),
    version: fc.constant("1.0.0"),
    subscribed_topics: fc.constant(["jobs.>"]),
    findings_topic: fc.constant("findings.fuzz"),
    agent_id: fc.constant(seeded.managedAgent),
    external_agent_ids: fc.constant([seeded.externalAgent]),
  };
  prototypeNames = Object.getOwnPropertyNames(Object.prototype).sort().join();
});

afterAll(async () => {
  await state?.close();
  redis?.disconnect();
  await t?.close();
  await agent?.close();
});

/** Sends a request that must succeed (building the resources the fuzzed paths name) and answers its JSON. */
async function must(method: Method, url: string, payload?: object, headers: Record<string, string> = {}) {
  const response = await t.request({ method, url, headers, ...(payload ? { payload } : {}) });
  if (response.statusCode >= 300)
    throw new Error(`${method} ${url}: ${response.statusCode} ${response.body}`);
  return response.json();
}

/**
 * One resource of every kind a path names — a call with its delivery and lineage, a held
 * approval, a finished job — so that a fuzzed request reaches real records; then waits until
 * Steward's background work on them is over, since the classes compare stored state.
 */
async function seed(): Promise<Seeded> {
  const tag = randomBytes(4).toString("hex");
  const agentToken = `fuzz-agent-credential-${tag}`;
  const origin = new URL(agent.url).origin;
  await createKey(t, "viewer");
  const keys = await must("GET", "/api/v1/api-keys");
  const apiKey = keys.items.find((item: { role: string }) => item.role === "viewer").id as string;
  const externalAgent = await registerAgent(t, agent.url, {
    auth_type: "bearer_token",
    auth_config: { token: agentToken },
    platform_config: { webhook_url: `${origin}/platform` },
  });
  const gatedAgent = await registerAgent(t, agent.url, {
    approval_config: { triggers: { first_invocation: true }, workflow: { approver_roles: ["admin"] } },
  });
  const subject = `fuzz-user-${tag}@example.com`;
  const user = { "x-external-user-id": subject };
  const call = await must("POST", `/api/v1/external-agents/${externalAgent}/invoke`, { input: "hi" }, user);
  const held = await must("POST", `/api/v1/external-agents/${gatedAgent}/invoke`, { input: "hi" }, user);
  const webhook = await must("POST", "/api/v1/webhooks", {
    url: `${origin}/events`,
    events: ["approval.expired"],
  });
  const policy = await must("POST", "/api/v1/policies", { name: `fuzz-policy-${tag}`, effect: "allow" });
  const approvalRule = await must("POST", "/api/v1/approval-rules", {
    name: `fuzz-rule-${tag}`,
    enabled: false,
    triggers: { cost_threshold: 100 },
    workflow: { approver_roles: ["admin"] },
  });
  const managed = await must("POST", "/api/v1/agents", definition({ name: `fuzz-managed-${tag}` }));
  const managedAgent = managed.agent.id as string;
  const alertRule = await must("POST", "/api/v1/agents/alert-rules", {
    name: `fuzz-alert-${tag}`,
    enabled: false,
    kind: "metric_threshold",
    metric: "errors",
    threshold: 5,
  });
  const job = await must("POST", "/api/v1/jobs", { agent_definition: SHOUT, input_payload: { text: "hi" } });
  const settled = async () =>
    (await must("GET", `/api/v1/jobs/${job.id}`)).status === "completed" &&
    (await must("GET", "/api/v1/deliveries")).items.every(
      (item: { status: string }) => item.status === "delivered",
    );
  await until(settled);
  if (!(await settled())) throw new Error("the seeded job or deliveries did not finish");
  const deliveries = await must("GET", `/api/v1/deliveries?external_agent_id=${externalAgent}`);
  return {
    externalAgent,
    invocation: call.invocation_id,
    subject,
    delivery: deliveries.items[0].id,
    webhook: webhook.id,
    approval: held.approval_id,
    approvalRule: approvalRule.id,
    alertRule: alertRule.id,
    managedAgent,
    job: job.id,
    policy: policy.id,
    apiKey,
    secrets: [t.adminKey, agentToken, webhook.secret, managed.credentials.token],
  };
}

/** The operations of Steward's OpenAPI document that take a body, a query or path parameters. */
async function fuzzedOperations(): Promise<Operation[]> {
  const document = (await t.request({ method: "GET", url: "/openapi.json", key: null })).json() as {
    paths: Record<
      string,
      Record<
        string,
        {
          parameters?: Parameter[];
          requestBody?: { required?: boolean; content: Record<string, { schema: JsonSchema }> };
        }
      >
    >;
  };
  const described = Object.entries(document.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, operation]): Operation => {
      const parameters = operation.parameters ?? [];
      const body = operation.requestBody?.content["application/json"]?.schema;
      return {
        method: method.toUpperCase() as Method,
        path,
        pathParams: parameters.filter((parameter) => parameter.in === "path"),
        query: parameters.filter((parameter) => parameter.in === "query"),
        body,
        bodyRequired: operation.requestBody?.required === true,
        takesBody: body !== undefined,
      };
    }),
  );
  // POST / takes a CloudEvent in any content type and parses it itself: the document gives it no body schema.
  const cloudEvents: Operation = {
    method: "POST",
    path: "/",
    pathParams: [],
    query: [],
    bodyRequired: true,
    takesBody: true,
  };
  return [
    ...described.filter(
      (operation) => operation.takesBody || operation.pathParams.length + operation.query.length > 0,
    ),
    cloudEvents,
  ];
}

/** The seeded resource a path parameter names; a new route with an unknown parameter stops the test. */
function seededId(operation: Operation): string {
  const entry = RESOURCE_OF_PATH.find(([prefix]) => operation.path.startsWith(prefix));
  if (!entry) throw new Error(`no seeded resource for ${operation.path}`);
  return seeded[entry[1]];
}

/** The operation's URL with these (already encoded) path values and query pairs; the seeded id elsewhere. */
function urlOf(operation: Operation, pathValue?: string, query: Array<[string, string]> = []): string {
  const path = operation.path.replace(/\{\w+\}/g, () => pathValue ?? encodeURIComponent(seededId(operation)));
  const search = query.map(([name, value]) => `${encodeURIComponent(name)}=${encodeURIComponent(value)}`);
  return search.length > 0 ? `${path}?${search.join("&")}` : path;
}

/** Valid values for the operation's required query parameters (the replay route needs a status). */
function requiredQuery(operation: Operation): fc.Arbitrary<Array<[string, string]>> {
  const required = operation.query.filter((parameter) => parameter.required);
  return fc.tuple(
    ...required.map((parameter) =>
      validValue(parameter.schema).map((value): [string, string] => [parameter.name, String(value)]),
    ),
  );
}

const validBodies = new Map<Operation, fc.Arbitrary<unknown>>();

/** A body the schema accepts (a random JSON object for POST /, which has no schema); built once per operation. */
function validBody(operation: Operation): fc.Arbitrary<unknown> {
  let body = validBodies.get(operation);
  if (!body) {
    body = operation.body
      ? validValue(operation.body, hints)
      : fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }));
    validBodies.set(operation, body);
  }
  return body;
}

/** A JSON request of the operation, with its seeded path id and valid required query. */
function jsonCase(operation: Operation, text: string, what: string): fc.Arbitrary<Case> {
  return requiredQuery(operation).map((query) => ({
    operation,
    url: urlOf(operation, undefined, query),
    payload: text,
    contentType: "application/json",
    what,
  }));
}

/** A body whose value at `site` is `value`, the rest valid. */
function bodyWithValueAt(
  operation: Operation,
  path: Site["path"],
  value: fc.Arbitrary<unknown>,
  what: string,
) {
  return fc
    .tuple(validBody(operation), value)
    .chain(([base, bad]) => jsonCase(operation, JSON.stringify(withValueAt(base, path, bad)), what));
}

/** The JSON text of `body` with raw `text` where `SPLICE` was (a string value, or a key with value 0). */
function spliced(body: unknown, text: string): string {
  const json = JSON.stringify(body);
  const asKey = `${JSON.stringify(SPLICE)}:0`;
  return json.includes(asKey) ? json.replace(asKey, text) : json.replace(JSON.stringify(SPLICE), text);
}

function sitesOfBody(operation: Operation): Site[] {
  return operation.body ? sitesOf(operation.body) : [{ path: [], schema: {} }];
}

/** An arbitrary of cases over whichever variants apply to the operation, or undefined when none does. */
function anyOf(variants: Array<fc.Arbitrary<Case> | undefined | false>): fc.Arbitrary<Case> | undefined {
  const applicable = variants.filter((variant): variant is fc.Arbitrary<Case> => Boolean(variant));
  return applicable.length > 0 ? fc.oneof(...applicable) : undefined;
}

/** One case per site the generator can make wrong, drawn among those sites. */
function atSomeSite(
  sites: Site[],
  make: (site: Site) => fc.Arbitrary<Case> | undefined,
): fc.Arbitrary<Case> | undefined {
  return anyOf(sites.map(make));
}

function queryCase(operation: Operation, pairs: Array<[string, string]>, what: string): Case {
  return { operation, url: urlOf(operation, undefined, pairs), what };
}

/** A query of the operation where `name` has `value` and every other required parameter is valid. */
function queryWith(operation: Operation, name: string, value: fc.Arbitrary<string>, what: string) {
  return fc
    .tuple(requiredQuery(operation), value)
    .map(([query, bad]) =>
      queryCase(operation, [...query.filter(([other]) => other !== name), [name, bad]], `${what} ${name}`),
    );
}

/** Raw JSON that is not JSON: a valid body's text cut short, or with a stray or foreign token in it. */
function malformedJson(operation: Operation): fc.Arbitrary<Case> | undefined {
  if (!operation.takesBody) return undefined;
  const corruptions: Array<fc.Arbitrary<(text: string) => string>> = [
    fc.nat().map((cut) => (text: string) => text.slice(0, cut % text.length)),
    fc.constantFrom(
      (text: string) => text.replace(/}$/, ",}"),
      (text: string) => text.replace(/"/g, "'"),
      (text: string) => text.replace(/"([^"]*)":/, "$1:"),
      (text: string) => `${text}}`,
      (text: string) => `/* note */${text}`,
      (text: string) => text.replace(/}$/, ',"n":NaN}'),
      (text: string) => text.replace(/}$/, ',"u":undefined}'),
      (text: string) => text.replace(/}$/, ',"x":"\\x41"}'),
      (text: string) => text.replace(/}$/, ',"s":"unterminated}'),
    ),
  ];
  return fc
    .tuple(validBody(operation), fc.oneof(...corruptions))
    .map(([body, corrupt]) => corrupt(JSON.stringify(body)))
    .filter((text) => !parsesAsJson(text))
    .chain((text) => jsonCase(operation, text, `malformed ${JSON.stringify(text.slice(0, 40))}`));
}

function parsesAsJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

const WRONG_CONTENT_TYPES = [
  "application/xml",
  "text/html",
  "text/plain",
  "multipart/form-data; boundary=fuzz",
  "application/x-www-form-urlencoded",
  "application/octet-stream",
  "application/merge-patch+json",
  "image/png",
];

/** A valid JSON body sent as something else, or with no content type at all. POST / takes any type by design. */
function wrongContentType(operation: Operation): fc.Arbitrary<Case> | undefined {
  if (!operation.body) return undefined;
  return fc
    .tuple(
      validBody(operation),
      fc.option(fc.constantFrom(...WRONG_CONTENT_TYPES), { nil: undefined }),
      requiredQuery(operation),
    )
    .map(([body, contentType, query]) => ({
      operation,
      url: urlOf(operation, undefined, query),
      payload: Buffer.from(JSON.stringify(body)),
      contentType,
      what: `content-type ${contentType ?? "(none)"}`,
    }));
}

/** A field (at any depth) or query parameter of a type its schema does not allow. */
function wrongTypes(operation: Operation): fc.Arbitrary<Case> | undefined {
  return anyOf([
    operation.body &&
      atSomeSite(sitesOfBody(operation), (site) => {
        const wrong = wrongTypeValue(site.schema);
        return wrong && bodyWithValueAt(operation, site.path, wrong, `wrong type at ${pathText(site)}`);
      }),
    ...operation.query.map((parameter) => {
      const wrong = wrongQueryValue(parameter.schema);
      return wrong && queryWith(operation, parameter.name, wrong, "wrong value for");
    }),
  ]);
}

/**
 * A body without one of the fields an object in it requires, or no body at all where an empty
 * object is refused too (a body of optional fields may be left out); a query without a required parameter.
 */
function missingRequired(operation: Operation): fc.Arbitrary<Case> | undefined {
  const requiring = sitesOfBody(operation).filter(
    (site) => (objectSchema(site.schema)?.required ?? []).length > 0,
  );
  const requiredQueryParams = operation.query.filter((parameter) => parameter.required);
  return anyOf([
    atSomeSite(requiring, (site) => {
      const object = objectSchema(site.schema) as JsonSchema;
      return fc
        .tuple(validBody(operation), validValue(object, hints), fc.constantFrom(...(object.required ?? [])))
        .chain(([base, fallback, missing]) => {
          const present = valueAt(base, site.path);
          const container =
            present !== null && typeof present === "object" && !Array.isArray(present) ? present : fallback;
          const { [missing]: _dropped, ...rest } = container as Record<string, unknown>;
          return jsonCase(
            operation,
            JSON.stringify(withValueAt(base, site.path, rest)),
            `no ${pathText(site)}.${missing}`,
          );
        });
    }),
    operation.bodyRequired &&
      (operation.body?.required ?? []).length > 0 &&
      requiredQuery(operation).map((query) => ({
        operation,
        url: urlOf(operation, undefined, query),
        what: "no body",
      })),
    requiredQueryParams.length > 0 &&
      fc
        .constantFrom(...requiredQueryParams)
        .map((parameter) => queryCase(operation, [], `no ${parameter.name}`)),
  ]);
}

/**
 * A key where an object allows none but its own. (Unknown query parameters are not tried: the
 * document does not say whether a query takes others, and the managed-agent routes do.)
 */
function unknownFields(operation: Operation): fc.Arbitrary<Case> | undefined {
  const strict = sitesOfBody(operation).filter(
    (site) => objectSchema(site.schema)?.additionalProperties === false,
  );
  return atSomeSite(strict, (site) => {
    const known = objectSchema(site.schema)?.properties ?? {};
    const name = fc
      .string({ minLength: 1, maxLength: 12 })
      .filter((key) => !(key in known) && key !== "__proto__");
    return name.chain((key) =>
      bodyWithValueAt(
        operation,
        [...site.path, key],
        validValue({}),
        `unknown field ${pathText(site)}.${key}`,
      ),
    );
  });
}

const HUGE = fc
  .integer({ min: ONE_MEGABYTE + 1, max: ONE_MEGABYTE + 4096 })
  .map((length) => "x".repeat(length));

/** Whether a query parameter refuses a 1 MB string of letters: a bound on length, a type or a format. */
function refusesHugeString(schema: JsonSchema): boolean {
  const allowed = allowedTypes(schema);
  return (
    schema.maxLength !== undefined ||
    (allowed !== undefined && !allowed.has("string")) ||
    wrongQueryValue(schema) !== undefined
  );
}

/** A string of more than 1 MB in a body (over the body limit), a query parameter or a path id. */
function hugeStrings(operation: Operation): fc.Arbitrary<Case> | undefined {
  const stringSites = sitesOfBody(operation).filter(
    (site) => site.path.length === 0 || allowedTypes(site.schema)?.has("string"),
  );
  return anyOf([
    operation.takesBody &&
      atSomeSite(stringSites, (site) =>
        bodyWithValueAt(operation, site.path, HUGE, `1 MB+ string at ${pathText(site)}`),
      ),
    ...operation.query
      .filter((parameter) => refusesHugeString(parameter.schema))
      .map((parameter) => queryWith(operation, parameter.name, HUGE, "1 MB+")),
    operation.pathParams.length > 0 &&
      fc.tuple(HUGE, requiredQuery(operation)).map(([id, query]) => ({
        operation,
        url: urlOf(operation, id, query),
        what: "1 MB+ path id",
      })),
  ]);
}

/** Which 10,000-deep container the schema at a site certainly refuses, if any. */
function refusedNesting(schema: JsonSchema): "array" | "object" | undefined {
  const allowed = allowedTypes(schema);
  if (!allowed) return undefined;
  if (!allowed.has("array")) return "array";
  if (!allowed.has("object")) return "object";
  const object = objectSchema(schema);
  return object?.additionalProperties === false && !("a" in (object.properties ?? {})) ? "object" : undefined;
}

function deepText(kind: "array" | "object"): string {
  return kind === "array"
    ? `${"[".repeat(DEPTH)}${"]".repeat(DEPTH)}`
    : `${'{"a":'.repeat(DEPTH)}0${"}".repeat(DEPTH)}`;
}

/** 10,000 levels of arrays or objects, as raw JSON text, where the schema refuses them (the whole body included). */
function deepNesting(operation: Operation): fc.Arbitrary<Case> | undefined {
  if (!operation.takesBody) return undefined;
  const sites = operation.body ? sitesOf(operation.body) : [{ path: [], schema: { type: "object" } }];
  return atSomeSite(sites, (site) => {
    const kind = refusedNesting(site.schema);
    if (!kind) return undefined;
    return validBody(operation).chain((base) =>
      jsonCase(
        operation,
        spliced(withValueAt(base, site.path, SPLICE), deepText(kind)),
        `10k-deep ${kind} at ${pathText(site)}`,
      ),
    );
  });
}

/** Raw JSON members that would plant PLANTED on Object.prototype if a parser or a merge let them through. */
const PROTOTYPE_MEMBERS = [
  `"__proto__":{"${PLANTED}":true}`,
  `"constructor":{"prototype":{"${PLANTED}":true}}`,
  `"\\u005f_proto__":{"${PLANTED}":true}`,
  `"__proto__":{"__proto__":{"${PLANTED}":true}}`,
  `"prototype":{"${PLANTED}":true},"constructor":{"prototype":{"${PLANTED}":true}}`,
];

/** Query names a parser that builds nested objects would turn into prototype writes (sent unencoded). */
const PROTOTYPE_QUERY = [
  "__proto__",
  `__proto__[${PLANTED}]`,
  `constructor[prototype][${PLANTED}]`,
  `__proto__.${PLANTED}`,
];

/** The paths of every object in a JSON value, its root included. */
function objectPaths(value: unknown, path: Site["path"] = []): Array<Site["path"]> {
  if (value === null || typeof value !== "object") return [];
  const own = Array.isArray(value) ? [] : [path];
  return [
    ...own,
    ...Object.entries(value).flatMap(([key, child]) =>
      objectPaths(child, [...path, Array.isArray(value) ? Number(key) : key]),
    ),
  ];
}

/** `__proto__`, `constructor.prototype` keys in any object of a body, or in a query string. */
function prototypeKeys(operation: Operation): fc.Arbitrary<Case> | undefined {
  return anyOf([
    operation.takesBody &&
      fc
        .tuple(validBody(operation), fc.constantFrom(...PROTOTYPE_MEMBERS), fc.nat())
        .chain(([base, member, pick]) => {
          const paths = objectPaths(base);
          const at = paths[pick % paths.length] ?? [];
          const text = spliced(withValueAt(base, [...at, SPLICE], 0), member);
          return jsonCase(operation, text, `${member.slice(0, 24)}… at ${at.join(".") || "(root)"}`);
        }),
    // In a query, beside a parameter of a wrong value: whether a query takes unknown names is not documented.
    ...operation.query.map((parameter) => {
      const wrong = wrongQueryValue(parameter.schema);
      return (
        wrong &&
        fc
          .tuple(
            queryWith(operation, parameter.name, wrong, "wrong value for"),
            fc.constantFrom(...PROTOTYPE_QUERY),
          )
          .map(([request, name]) => ({
            ...request,
            url: `${request.url}&${name}=true`,
            what: `query ${name}`,
          }))
      );
    }),
  ]);
}

/** Text of the Unicode edge pieces that a URL can carry (a lone surrogate has no UTF-8 form). */
const urlSafeUnicode = unicodeEdge.map((text) => text.toWellFormed());

/** Whether a path parameter names a resource (an id), rather than free text such as a lineage subject. */
function namesResource(parameter: Parameter): boolean {
  return /(^|_)id$|Id$/.test(parameter.name);
}

/** Unicode edge strings where the schema refuses them: enums, patterns, formats, maxLength in code points, keys of strict objects, ids. */
function unicodeEdges(operation: Operation): fc.Arbitrary<Case> | undefined {
  return anyOf([
    operation.body &&
      atSomeSite(sitesOfBody(operation), (site) => {
        const refused = unicodeRefusedBy(site.schema);
        return refused && bodyWithValueAt(operation, site.path, refused, `unicode at ${pathText(site)}`);
      }),
    operation.body &&
      atSomeSite(
        sitesOfBody(operation).filter((site) => objectSchema(site.schema)?.additionalProperties === false),
        (site) =>
          unicodeEdge.chain((key) =>
            bodyWithValueAt(
              operation,
              [...site.path, key],
              fc.constant(1),
              `unicode key at ${pathText(site)}`,
            ),
          ),
      ),
    // Made well-formed for the URL: only for parameters without a pattern the replacement character could match.
    ...operation.query.map((parameter) => {
      const refused = !parameter.schema.pattern && unicodeRefusedBy(parameter.schema);
      return (
        refused &&
        queryWith(
          operation,
          parameter.name,
          refused.map((text) => text.toWellFormed()),
          "unicode",
        )
      );
    }),
    operation.pathParams.some(namesResource) &&
      fc.tuple(urlSafeUnicode, requiredQuery(operation)).map(([id, query]) => ({
        operation,
        url: urlOf(operation, encodeURIComponent(id), query),
        what: `unicode id ${JSON.stringify(id)}`,
      })),
  ]);
}

/** Path ids no resource has: traversal, NUL, malformed or overlong UTF-8, injection, plain junk and unknown uuids. */
const JUNK_IDS = [
  "..%2F..%2Fapi%2Fv1%2Forgs",
  "%2e%2e%2f%2e%2e%2f",
  "%252e%252e%252f",
  "%00",
  "a%00b",
  "%ZZ",
  "%",
  "%ED%A0%80",
  "%C0%AF",
  "%FF%FE",
  "%27%20OR%20%271%27%3D%271",
  "%24%7Bjndi%3Aldap%3A%2F%2Fx%7D",
  "%E2%80%AE",
  "null",
  "-1",
  "*",
];

/** Values that are never a valid path segment, whatever the parameter means: malformed percent-encoding. */
const MALFORMED_SEGMENTS = ["%ZZ", "%", "%ED%A0%80", "%C0%AF", "%FF%FE"];

function invalidPathValue(parameter: Parameter): fc.Arbitrary<string> {
  const overlong = fc
    .integer({ min: (parameter.schema.maxLength ?? 512) + 1, max: (parameter.schema.maxLength ?? 512) + 100 })
    .map((length) => "x".repeat(length));
  if (!namesResource(parameter)) return fc.oneof(overlong, fc.constantFrom(...MALFORMED_SEGMENTS));
  const seededIds = new Set(Object.values(seeded).flat());
  return fc.oneof(
    fc.constantFrom(...JUNK_IDS),
    fc.uuid(),
    overlong,
    fc
      .string({ minLength: 1, maxLength: 40 })
      .filter((id) => !/^\.+$/.test(id) && !seededIds.has(id))
      .map(encodeURIComponent),
  );
}

/** An invalid id in the path of an otherwise valid request. */
function invalidIds(operation: Operation): fc.Arbitrary<Case> | undefined {
  const [parameter] = operation.pathParams;
  if (!parameter) return undefined;
  return fc
    .tuple(
      invalidPathValue(parameter),
      requiredQuery(operation),
      operation.body ? validBody(operation) : fc.constant(undefined),
    )
    .map(([id, query, body]) => ({
      operation,
      url: urlOf(operation, id, query),
      ...(body === undefined ? {} : { payload: JSON.stringify(body), contentType: "application/json" }),
      what: `id ${id.slice(0, 40)}`,
    }));
}

/** A short string holding a NUL, a lone surrogate or a noncharacter, which a free-text field takes. */
const storedEdge = fc
  .constantFrom("\u0000", "\ud800", "\udfff", "\uffff", "\u202e")
  .map((piece) => `a${piece}b`);

/** Whether a string schema takes any short text: no enum, pattern or format. */
function isFreeText(schema: JsonSchema): boolean {
  return (
    schema.type === "string" &&
    !schema.enum &&
    !schema.pattern &&
    !schema.format &&
    (schema.maxLength ?? 3) >= 3 &&
    (schema.minLength ?? 0) <= 3
  );
}

/**
 * Edge values the schemas let through, so Steward's own code meets them: NUL and lone
 * surrogates in free text (bodies and queries), as keys and values of free-form objects,
 * 10,000-deep nesting where any JSON goes, an empty patch, NUL in a free-text path parameter.
 */
function allowedEdges(operation: Operation): fc.Arbitrary<Case> | undefined {
  const sites = operation.body ? sitesOf(operation.body) : [];
  const freeText = sites.filter((site) => isFreeText(site.schema));
  const freeForm = sites.filter(
    (site) => allowedTypes(site.schema) === undefined || isFreeFormObject(site.schema),
  );
  const [parameter] = operation.pathParams;
  return anyOf([
    atSomeSite(freeText, (site) =>
      bodyWithValueAt(operation, site.path, storedEdge, `${pathText(site)} with NUL/surrogate`),
    ),
    atSomeSite(freeForm, (site) =>
      fc.oneof(
        bodyWithValueAt(
          operation,
          site.path,
          fc.dictionary(storedEdge, storedEdge, { minKeys: 1, maxKeys: 2 }),
          `${pathText(site)} NUL/surrogate entries`,
        ),
        validBody(operation).chain((base) =>
          jsonCase(
            operation,
            spliced(withValueAt(base, site.path, SPLICE), deepText("object")),
            `10k-deep at ${pathText(site)}`,
          ),
        ),
      ),
    ),
    ...operation.query
      .filter((parameter) => isFreeText(parameter.schema))
      .map((parameter) =>
        queryWith(
          operation,
          parameter.name,
          storedEdge.map((text) => text.toWellFormed()),
          "NUL/U+FFFD in",
        ),
      ),
    operation.body && !(operation.body.required ?? []).length && jsonCase(operation, "{}", "empty body {}"),
    parameter &&
      !namesResource(parameter) &&
      fc
        .constantFrom("a%00b", "%F0%9F%92%A9", "%E2%80%AE")
        .map((value) => ({ operation, url: urlOf(operation, value), what: `${parameter.name} ${value}` })),
  ]);
}

function isFreeFormObject(schema: JsonSchema): boolean {
  const object = objectSchema(schema);
  return object !== undefined && !object.properties && object.additionalProperties !== false;
}

function pathText(site: Site): string {
  return site.path.length > 0 ? site.path.join(".") : "(root)";
}

/**
 * What is wrong with an error answer, or undefined when it is a 4xx with the project's
 * error envelope — or, from the A2A endpoint, with a JSON-RPC error (docs/a2a.md).
 */
function envelopeProblem(response: LightMyRequestResponse): string | undefined {
  if (response.statusCode < 400 || response.statusCode >= 500) return `answered ${response.statusCode}`;
  let body: unknown;
  try {
    body = response.json();
  } catch {
    return `${response.statusCode} without a JSON body`;
  }
  if (jsonRpcErrorCode(body) !== undefined) return undefined;
  const error = (body as { error?: { code?: unknown; message?: unknown; request_id?: unknown } } | null)
    ?.error;
  if (!error || Object.keys(body as object).length !== 1)
    return `${response.statusCode} without the error envelope: ${response.body.slice(0, 120)}`;
  if (!ERROR_CODES.includes(error.code as ErrorCode)) return `unknown error code ${String(error.code)}`;
  if (STATUS_BY_CODE[error.code as ErrorCode] !== response.statusCode)
    return `code ${String(error.code)} with status ${response.statusCode}`;
  if (typeof error.message !== "string" || error.message.length === 0) return "no message";
  if (error.request_id !== response.headers["x-request-id"]) return "request_id is not the x-request-id";
  return undefined;
}

/** Whether an answer carries a secret or Steward's internals (a stack frame, a path on this machine). */
function leaks(response: LightMyRequestResponse | Error): boolean {
  const body = response instanceof Error ? response.message : response.body;
  return (
    seeded.secrets.some((secret) => body.includes(secret)) ||
    body.includes(process.cwd()) ||
    /\bat .+\.[cm]?[jt]s:\d+:\d+/.test(body)
  );
}

/** Whether Object.prototype is as it was: no own property added, nothing planted. */
function prototypeIntact(): boolean {
  return (
    Object.getOwnPropertyNames(Object.prototype).sort().join() === prototypeNames &&
    ({} as Record<string, unknown>)[PLANTED] === undefined
  );
}

/** Every operation a case was sent to, to check that none was left out. */
const reached = new Set<Operation>();

/** The answer to a case, or the error that cut it off before it was complete. */
async function send(request: Case): Promise<LightMyRequestResponse | Error> {
  reached.add(request.operation);
  try {
    return await t.request({
      method: request.operation.method,
      url: request.url,
      ...(request.payload === undefined ? {} : { payload: request.payload }),
      headers: request.contentType ? { "content-type": request.contentType } : {},
    });
  } catch (error) {
    return error as Error;
  }
}

/** What is wrong with the answer to a case, or undefined when it is as the class expects. */
function problemWith(response: LightMyRequestResponse | Error, expectation: Expectation): string | undefined {
  if (!prototypeIntact()) return "Object.prototype was changed";
  if (response instanceof Error) return `no complete answer: ${response.message}`;
  if (expectation === "allowed" && response.statusCode < 400) return undefined;
  if (expectation === "allowed" && response.statusCode >= 500)
    return `answered ${response.statusCode} ${response.body.slice(0, 80)}`;
  return envelopeProblem(response);
}

/** The cases of a class: RUNS draws for every operation it applies to, from the fixed seed. */
function casesOf(make: (operation: Operation) => fc.Arbitrary<Case> | undefined): Case[] {
  return operations.flatMap((operation, index) => {
    const arbitrary = make(operation);
    return arbitrary ? fc.sample(arbitrary, { seed: SEED + index, numRuns: RUNS }) : [];
  });
}

/** Whether Steward has nothing left to do for earlier requests: no delivery waiting, no job to run. */
async function idle(): Promise<boolean> {
  const schema = t.steward.database.schema;
  const { rows } = await t.steward.database.pool.query<{ busy: string }>(
    `SELECT (SELECT count(*) FROM "${schema}".deliveries WHERE status = 'pending')
          + (SELECT count(*) FROM "${schema}".jobs WHERE status IN ('queued', 'running')) AS busy`,
  );
  return Number(rows[0]?.busy) === 0;
}

function describeCase(request: Case): string {
  return `${request.operation.method} ${request.operation.path} (${request.what})`;
}

/** A class's figures and the failures a reader needs to reproduce them. */
function report(
  context: TestContext,
  fault: string,
  tried: number,
  failures: string[],
  changes: string[],
  leaked: number,
) {
  expect
    .soft(failures, `${fault}, seed ${SEED}: ${failures.length} of ${tried} answered wrongly`)
    .toEqual([]);
  expect.soft(changes, `${fault}, seed ${SEED}: refused requests changed stored state`).toEqual([]);
  tally(context, { fault, tried, handled: tried - failures.length, lost: changes.length, leaked });
}

/**
 * Sends every case of a class of invalid input: handled = answered 4xx with the envelope and
 * Object.prototype intact; lost = tables and Redis keys the refused requests changed (a
 * half-written record); leaked = answers carrying a secret or a stack trace.
 */
async function fuzzRefused(context: TestContext, fault: string, cases: Case[]): Promise<void> {
  const before = await state.snapshot();
  const failures: string[] = [];
  let leaked = 0;
  for (const request of cases) {
    const response = await send(request);
    const problem = problemWith(response, "refused");
    if (problem) failures.push(`${describeCase(request)}: ${problem}`);
    if (leaks(response)) leaked++;
  }
  report(context, fault, cases.length, failures, changesBetween(before, await state.snapshot()), leaked);
}

/**
 * Sends every case of a class of input the schemas allow: handled = never a 5xx, a 4xx with
 * the envelope; lost = refused requests (4xx or 5xx) that changed stored state, checked case
 * by case once the background work of the accepted ones is over.
 */
async function fuzzAllowed(context: TestContext, fault: string, cases: Case[]): Promise<void> {
  const failures: string[] = [];
  const changes: string[] = [];
  let leaked = 0;
  for (const request of cases) {
    const before = await state.snapshot();
    const response = await send(request);
    const problem = problemWith(response, "allowed");
    if (problem) failures.push(`${describeCase(request)}: ${problem}`);
    if (leaks(response)) leaked++;
    if (!(response instanceof Error) && response.statusCode < 400) {
      await until(idle);
      continue;
    }
    const changed = changesBetween(before, await state.snapshot());
    if (changed.length > 0) changes.push(`${describeCase(request)}: ${changed.join(", ")}`);
  }
  report(context, fault, cases.length, failures, changes, leaked);
}

describe("input fuzzing of every operation in the OpenAPI document", () => {
  it("refuses malformed JSON", async (context) => {
    await fuzzRefused(context, "fuzzed: malformed JSON", casesOf(malformedJson));
  });

  it("refuses a body in another content type", async (context) => {
    await fuzzRefused(context, "fuzzed: wrong content-type", casesOf(wrongContentType));
  });

  it("refuses fields and parameters of the wrong type", async (context) => {
    await fuzzRefused(context, "fuzzed: wrong types", casesOf(wrongTypes));
  });

  it("refuses bodies and queries missing a required field", async (context) => {
    await fuzzRefused(context, "fuzzed: missing required fields", casesOf(missingRequired));
  });

  it("refuses unknown fields", async (context) => {
    await fuzzRefused(context, "fuzzed: unknown fields", casesOf(unknownFields));
  });

  it("refuses 1 MB+ strings in bodies, queries and paths", async (context) => {
    await fuzzRefused(context, "fuzzed: huge strings (1 MB+)", casesOf(hugeStrings));
  });

  it("refuses 10,000-deep nesting where the schema takes none", async (context) => {
    await fuzzRefused(context, "fuzzed: 10k-deep nesting", casesOf(deepNesting));
  });

  it("refuses __proto__ and constructor.prototype keys and pollutes nothing", async (context) => {
    await fuzzRefused(context, "fuzzed: prototype keys", casesOf(prototypeKeys));
    expect(Object.getOwnPropertyNames(Object.prototype).sort().join()).toBe(prototypeNames);
    expect(({} as Record<string, unknown>)[PLANTED]).toBeUndefined();
  });

  it("refuses Unicode edge cases where the schema does", async (context) => {
    await fuzzRefused(context, "fuzzed: unicode edge cases", casesOf(unicodeEdges));
  });

  it("answers invalid ids in paths with 4xx", async (context) => {
    await fuzzRefused(context, "fuzzed: invalid ids", casesOf(invalidIds));
  });

  it("never answers 5xx to edge values the schema allows", async (context) => {
    await fuzzAllowed(context, "fuzzed: edge values the schema allows", casesOf(allowedEdges));
  });

  it("reached every operation that takes a body, a query or path parameters", () => {
    const missed = operations.filter((operation) => !reached.has(operation));
    expect(missed.map((operation) => `${operation.method} ${operation.path}`)).toEqual([]);
  });
});
