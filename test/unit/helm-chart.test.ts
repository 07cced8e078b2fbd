import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Ajv } from "ajv";
import { Deployment, type IDeployment } from "kubernetes-models/apps/v1/Deployment";
import {
  HorizontalPodAutoscaler,
  type IHorizontalPodAutoscaler,
} from "kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler";
import { type IIngress, Ingress } from "kubernetes-models/networking.k8s.io/v1/Ingress";
import { type INetworkPolicy, NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";
import {
  type IPodDisruptionBudget,
  PodDisruptionBudget,
} from "kubernetes-models/policy/v1/PodDisruptionBudget";
import { ConfigMap, type IConfigMap } from "kubernetes-models/v1/ConfigMap";
import { type IService, Service } from "kubernetes-models/v1/Service";
import { ServiceAccount } from "kubernetes-models/v1/ServiceAccount";
import semver from "semver";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments, parse as parseYaml } from "yaml";
import { loadConfig } from "../../src/config.js";
import { registerExecutorGauges } from "../../src/executor/executor-metrics.js";
import { jetStreamDeclarations } from "../../src/executor/job-queue.js";
import { createLogger } from "../../src/observability/logger.js";
import { createMetrics } from "../../src/observability/metrics.js";

/**
 * deploy/helm/steward without Helm, which neither Debian nor npm carries. Three layers:
 * static checks of the chart's files (Chart.yaml, values against values.schema.json,
 * template syntax, helpers, .Values paths); rendering with deploy/helm/render, Go's
 * text/template with Sprig v3 as Helm's engine uses them, built from Debian's packages
 * (.ci/run installs them); and checks of the rendered YAML: Kubernetes' own schemas
 * (kubernetes-models) plus what Steward needs of it. The same file checks the Grafana
 * dashboard and the alerts in docs/operations.md against the metrics Steward registers.
 */

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const CHART = join(ROOT, "deploy/helm/steward");
const TEMPLATES = join(CHART, "templates");
const GOPATH = "/usr/share/gocode";
const GO_PACKAGES = "golang-go golang-github-masterminds-sprig-dev golang-gopkg-yaml.v2-dev";

type Values = Record<string, unknown>;
type K8sObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [field: string]: unknown;
};

const read = (path: string) => readFileSync(path, "utf8");
const chart = parseYaml(read(join(CHART, "Chart.yaml"))) as Record<string, unknown>;
const defaults = parseYaml(read(join(CHART, "values.yaml"))) as Values;
const schema = JSON.parse(read(join(CHART, "values.schema.json"))) as object;
const templateFiles = readdirSync(TEMPLATES).sort();
const templates = Object.fromEntries(templateFiles.map((file) => [file, read(join(TEMPLATES, file))]));
const validateValues = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true }).compile(schema);

const isMap = (value: unknown): value is Values =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** Helm's coalescing of user values over the chart's: maps merge, anything else replaces, null removes. */
function coalesce(base: Values, overrides: Values): Values {
  const result: Values = structuredClone(base);
  for (const [key, value] of Object.entries(overrides)) {
    if (value === null) delete result[key];
    else if (isMap(value) && isMap(result[key])) result[key] = coalesce(result[key] as Values, value);
    else result[key] = structuredClone(value);
  }
  return result;
}

/** Variables src/config.ts reads (every upper-case string literal in it, a superset). */
const configVariables = new Set(
  [...read(join(ROOT, "src/config.ts")).matchAll(/"([A-Z][A-Z0-9_]{2,})"/g)].map((match) => match[1]),
);

describe("deploy/helm/steward: Chart.yaml", () => {
  it("is a v2 application chart named after its directory, deploying this package's version", () => {
    expect(chart.apiVersion).toBe("v2");
    expect(chart.type).toBe("application");
    expect(chart.name).toBe("steward");
    expect(semver.valid(chart.version as string)).not.toBeNull();
    const packageVersion = JSON.parse(read(join(ROOT, "package.json"))).version;
    expect(chart.appVersion).toBe(packageVersion);
  });

  it("declares a Kubernetes range that has autoscaling/v2 and policy/v1", () => {
    const range = chart.kubeVersion as string;
    expect(semver.validRange(range)).not.toBeNull();
    expect(semver.satisfies("1.25.0", range)).toBe(true);
    expect(semver.satisfies("1.33.1", range)).toBe(true);
    expect(semver.satisfies("1.22.0", range)).toBe(false);
  });
});

describe("deploy/helm/steward: values.schema.json", () => {
  const errorsOf = (overrides: Values) => {
    validateValues(coalesce(defaults, overrides));
    return (validateValues.errors ?? []).map((error) => `${error.instancePath} ${error.message}`);
  };

  it("accepts values.yaml", () => {
    expect(errorsOf({})).toEqual([]);
  });

  it.each([
    ["a secret among the plain settings", { config: { DATABASE_URL: "postgres://u:p@db/steward" } }],
    ["a secret among the worker's settings", { worker: { config: { STEWARD_ENCRYPTION_KEY: "k" } } }],
    ["JetStream names for the workers alone", { worker: { config: { STEWARD_JOBS_STREAM: "OTHER" } } }],
    ["a misspelt top-level key", { replicas: 3 }],
    ["a port that is not a number", { config: { PORT: "eighty" } }],
    ["a pool size Steward refuses", { config: { STEWARD_DB_POOL_SIZE: 500 } }],
    ["no Secret for DATABASE_URL", { secrets: { databaseUrl: { name: "", key: "url" } } }],
    ["no Secret for the encryption key", { secrets: { encryptionKey: { name: "", key: "current" } } }],
    ["a probe path of one's own", { api: { livenessProbe: { httpGet: { path: "/" } } } }],
    ["a CIDR that is not one", { networkPolicy: { egress: { postgres: { cidrs: ["db.internal"] } } } }],
    ["a fractional replica count", { worker: { autoscaling: { maxReplicas: 2.5 } } }],
    ["a worker port out of range", { worker: { port: 70_000 } }],
    ["the workers' port among their settings", { worker: { config: { STEWARD_WORKER_PORT: 9000 } } }],
    ["the workers' port among the shared settings", { config: { STEWARD_WORKER_PORT: 9000 } }],
  ])("refuses %s", (_, overrides) => {
    expect(errorsOf(overrides)).not.toEqual([]);
  });

  it("lists as settings only variables Steward reads", () => {
    for (const name of Object.keys(defaults.config as Values)) expect(configVariables).toContain(name);
    for (const name of Object.keys((defaults.worker as Values).config as Values))
      expect(configVariables).toContain(name);
  });
});

/** `{{ … }}` actions of a template, trim markers and spaces removed. */
function actions(text: string): string[] {
  return [...text.matchAll(/\{\{-?\s*([\s\S]*?)\s*-?\}\}/g)].map((match) => match[1] as string);
}

/** `.Values.a.b` paths a template reads, wherever the chart root is (., $, .root). */
function valuesPaths(text: string): string[][] {
  return [...text.matchAll(/\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)/g)].map((match) =>
    (match[1] as string).slice(1).split("."),
  );
}

describe("deploy/helm/steward: templates", () => {
  const helpers = templates["_helpers.tpl"] ?? "";
  const defined = [...helpers.matchAll(/define "([^"]+)"/g)].map((match) => match[1] as string);

  it("has the resources the chart promises", () => {
    for (const file of [
      "_helpers.tpl",
      "NOTES.txt",
      "configmap.yaml",
      "deployment-api.yaml",
      "deployment-worker.yaml",
      "hpa-worker.yaml",
      "service.yaml",
      "ingress.yaml",
      "pdb.yaml",
      "servicemonitor.yaml",
      "podmonitor-worker.yaml",
      "networkpolicy.yaml",
      "nack.yaml",
      "serviceaccount.yaml",
    ])
      expect(templateFiles).toContain(file);
  });

  it.each(templateFiles)("%s: every {{ has its }} and every block its end", (file) => {
    const text = templates[file] as string;
    const outside = text.replace(/\{\{[\s\S]*?\}\}/g, "");
    expect(outside).not.toMatch(/\{\{|\}\}/);
    const stack: string[] = [];
    for (const action of actions(text)) {
      expect(action, "an action inside an action").not.toContain("{{");
      if (action.startsWith("/*")) {
        expect(action.endsWith("*/"), `unclosed comment in ${file}`).toBe(true);
        continue;
      }
      const keyword = /^(if|range|with|define|block|else|end)\b/.exec(action)?.[1];
      if (keyword === "end") expect(stack.pop(), `an end with no block in ${file}`).toBeDefined();
      else if (keyword === "else") expect(["if", "with", "range"]).toContain(stack.at(-1));
      else if (keyword) stack.push(keyword);
    }
    expect(stack, `blocks left open in ${file}`).toEqual([]);
  });

  it("includes only helpers _helpers.tpl defines, and uses every one it defines", () => {
    const used = new Set<string>();
    for (const text of Object.values(templates))
      for (const match of text.matchAll(/\b(?:include|template)\s+"([^"]+)"/g)) used.add(match[1] as string);
    for (const name of used) expect(defined, `${name} is defined`).toContain(name);
    for (const name of defined) expect(used, `${name} is used`).toContain(name);
    // A template included by its path (the config checksum) names a file that exists.
    for (const text of Object.values(templates))
      for (const match of text.matchAll(/print [$.]*Template\.BasePath "\/([^"]+)"/g))
        expect(templateFiles).toContain(match[1]);
  });

  it("reads only values that values.yaml defines", () => {
    for (const [file, text] of Object.entries(templates)) {
      for (const path of valuesPaths(text)) {
        let node: unknown = defaults;
        for (const key of path) {
          expect(isMap(node) && key in node, `${file}: .Values.${path.join(".")}`).toBe(true);
          node = (node as Values)[key];
        }
      }
    }
  });
});

// ---- Rendering ----

const RENDERER_DIR = mkdtempSync(join(tmpdir(), "steward-helm-render-"));
const RENDERER = join(RENDERER_DIR, "render");
const GO_ENV = {
  ...process.env,
  GO111MODULE: "off",
  GOPATH,
  GOFLAGS: "",
  GOCACHE: process.env.GOCACHE ?? join(tmpdir(), "steward-go-build-cache"),
};

interface Rendered {
  values: Values;
  manifests: Record<string, string>;
  notes: string;
  objects: K8sObject[];
}

/** Renders the chart as `helm template` would, after validating the merged values as Helm does. */
function render(overrides: Values = {}, options: { skipSchema?: boolean } = {}): Rendered {
  const values = coalesce(defaults, overrides);
  if (!options.skipSchema && !validateValues(values))
    throw new Error(`values refused by the schema: ${JSON.stringify(validateValues.errors)}`);
  const result = spawnSync(RENDERER, [], {
    input: JSON.stringify({ chartDir: CHART, values, release: { name: "steward", namespace: "agents" } }),
    encoding: "utf8",
  });
  if (result.error) throw result.error;
  if (result.status !== 0) throw new Error(result.stderr.trim());
  const { manifests, notes } = JSON.parse(result.stdout) as {
    manifests: Record<string, string>;
    notes: string;
  };
  const objects: K8sObject[] = [];
  for (const [file, text] of Object.entries(manifests)) {
    for (const document of parseAllDocuments(text)) {
      expect(document.errors.map(String), `YAML of ${file}`).toEqual([]);
      const object = document.toJS() as K8sObject | null;
      if (object !== null) objects.push(object);
    }
  }
  return { values, manifests, notes, objects };
}

function find<T>(rendered: Rendered, kind: string, name?: string): T {
  const found = rendered.objects.find(
    (object) => object.kind === kind && (name === undefined || object.metadata.name === name),
  );
  if (!found) throw new Error(`no ${kind}${name ? ` ${name}` : ""} rendered`);
  return found as T;
}

function pod(deployment: IDeployment) {
  const spec = deployment.spec?.template.spec;
  if (!spec) throw new Error(`${deployment.metadata?.name} has no pod spec`);
  return spec;
}

function container(deployment: IDeployment, name: string) {
  const found = pod(deployment).containers.find((item) => item.name === name);
  if (!found) throw new Error(`${deployment.metadata?.name} has no container ${name}`);
  return found;
}

const matches = (selector: Record<string, string> | undefined, labels: Record<string, string> | undefined) =>
  selector !== undefined &&
  Object.keys(selector).length > 0 &&
  Object.entries(selector).every(([key, value]) => labels?.[key] === value);

/** Kubernetes' own schemas for the built-in kinds; custom resources are checked by their own tests. */
const MODELS: Record<string, (data: unknown) => { validate(): void }> = {
  "v1/ConfigMap": (data) => new ConfigMap(data as ConstructorParameters<typeof ConfigMap>[0]),
  "v1/Service": (data) => new Service(data as ConstructorParameters<typeof Service>[0]),
  "v1/ServiceAccount": (data) => new ServiceAccount(data as ConstructorParameters<typeof ServiceAccount>[0]),
  "apps/v1/Deployment": (data) => new Deployment(data as ConstructorParameters<typeof Deployment>[0]),
  "autoscaling/v2/HorizontalPodAutoscaler": (data) =>
    new HorizontalPodAutoscaler(data as ConstructorParameters<typeof HorizontalPodAutoscaler>[0]),
  "policy/v1/PodDisruptionBudget": (data) =>
    new PodDisruptionBudget(data as ConstructorParameters<typeof PodDisruptionBudget>[0]),
  "networking.k8s.io/v1/Ingress": (data) => new Ingress(data as ConstructorParameters<typeof Ingress>[0]),
  "networking.k8s.io/v1/NetworkPolicy": (data) =>
    new NetworkPolicy(data as ConstructorParameters<typeof NetworkPolicy>[0]),
};
/**
 * Kubernetes' schemas allow fields they do not define, so a mis-indented line (limits:
 * beside resources: instead of under it) passes validate(). The API server's strict field
 * validation would refuse it: this does the same, reading each type's fields from
 * kubernetes-models' declarations (one interface per .d.ts, nested types imported).
 */
function unknownFields(value: unknown, declaration: string, path: string): string[] {
  const text = read(declaration);
  const body = /export interface \w+(?: extends TypeMeta)? \{\n([\s\S]*?)\n\}/.exec(text)?.[1];
  if (body === undefined || !isMap(value)) return []; // a type alias (Quantity, IntOrString, Time): a scalar
  const imports = new Map(
    [...text.matchAll(/import \{ (\w+) \} from "([^"]+)";/g)].map((match) => [
      match[1] as string,
      match[2] as string,
    ]),
  );
  const fields = new Map(
    [...body.matchAll(/^ {4}"([^"]+)"\??: (.+)$/gm)].map((match) => [match[1] as string, match[2] as string]),
  );
  const problems: string[] = [];
  for (const [key, item] of Object.entries(value)) {
    const type = fields.get(key);
    if (type === undefined) {
      problems.push(`${path}.${key}`);
      continue;
    }
    const name = /^(?:Array<)?(I\w+)>?;$/.exec(type)?.[1];
    const source = name ? imports.get(name) : undefined;
    if (!source) continue;
    const file = source.startsWith(".")
      ? join(declaration, "..", `${source}.d.ts`)
      : join(ROOT, "node_modules", `${source}.d.ts`);
    const items = Array.isArray(item)
      ? item.map((entry, index) => [entry, `${path}.${key}[${index}]`] as const)
      : [[item, `${path}.${key}`] as const];
    for (const [entry, at] of items) problems.push(...unknownFields(entry, file, at));
  }
  return problems;
}

const CUSTOM_RESOURCES = new Set([
  "monitoring.coreos.com/v1/ServiceMonitor",
  "monitoring.coreos.com/v1/PodMonitor",
  "jetstream.nats.io/v1beta2/Stream",
  "jetstream.nats.io/v1beta2/Consumer",
]);

/** Everything optional switched on, as an operator with the full stack would set it. */
const EVERYTHING: Values = {
  config: { STEWARD_PUBLIC_URL: "https://steward.example.com", STEWARD_BODY_LIMIT: 2_097_152 },
  ingress: {
    enabled: true,
    className: "nginx",
    tls: [{ secretName: "steward-tls", hosts: ["steward.example.com"] }],
  },
  serviceMonitor: { enabled: true, labels: { release: "kube-prometheus-stack" } },
  nack: { enabled: true, account: "steward" },
  networkPolicy: {
    enabled: true,
    ingressFrom: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "ingress-nginx" } } }],
    egress: {
      postgres: { cidrs: ["10.20.0.0/24"] },
      redis: { peers: [{ podSelector: { matchLabels: { app: "redis" } } }] },
      nats: { cidrs: ["10.30.0.5/32"], ports: [4222, 7422] },
      agents: { cidrs: ["0.0.0.0/0"], ports: [443, 80] },
    },
  },
  migrations: { databaseUrl: { name: "steward-database-direct", key: "url" } },
  secrets: {
    natsAccountSeed: { name: "steward-nats", key: "account-seed" },
    extra: [{ env: "OPENAI_API_KEY", name: "steward-llm", key: "openai" }],
  },
  worker: { autoscaling: { enabled: false }, config: { STEWARD_JOBS_CONCURRENCY: 16 } },
};

describe("deploy/helm/steward: rendered", () => {
  let base: Rendered;
  let everything: Rendered;

  beforeAll(() => {
    const built = spawnSync("go", ["build", "-o", RENDERER, "deploy/helm/render/main.go"], {
      cwd: ROOT,
      env: GO_ENV,
      encoding: "utf8",
    });
    if (built.error || built.status !== 0)
      throw new Error(
        `cannot build deploy/helm/render (apt-get install ${GO_PACKAGES}, as .ci/run does): ${
          built.error?.message ?? built.stderr
        }`,
      );
    base = render();
    everything = render(EVERYTHING);
  }, 120_000);

  afterAll(() => rmSync(RENDERER_DIR, { recursive: true, force: true }));

  it("renders the defaults to the API, the workers, their autoscaler and disruption budgets", () => {
    const kinds = base.objects.map((object) => `${object.kind}/${object.metadata.name}`).sort();
    expect(kinds).toEqual([
      "ConfigMap/steward",
      "Deployment/steward-api",
      "Deployment/steward-worker",
      "HorizontalPodAutoscaler/steward-worker",
      "PodDisruptionBudget/steward-api",
      "PodDisruptionBudget/steward-worker",
      "Service/steward",
      "ServiceAccount/steward",
    ]);
    const optional = everything.objects.map((object) => object.kind);
    for (const kind of ["Ingress", "ServiceMonitor", "PodMonitor", "NetworkPolicy", "Stream", "Consumer"])
      expect(optional).toContain(kind);
    expect(everything.objects.map((object) => object.kind)).not.toContain("HorizontalPodAutoscaler");
  });

  it("passes Kubernetes' schemas, with unique names and the release's labels", () => {
    for (const rendered of [base, everything]) {
      const seen = new Set<string>();
      for (const object of rendered.objects) {
        const type = `${object.apiVersion}/${object.kind}`;
        const model = MODELS[type];
        expect(model !== undefined || CUSTOM_RESOURCES.has(type), `a known kind: ${type}`).toBe(true);
        model?.(object).validate();
        if (model) {
          const declaration = join(ROOT, "node_modules/kubernetes-models", `${type}.d.ts`);
          expect(unknownFields(object, declaration, type)).toEqual([]);
        }
        expect(object.metadata.name).toMatch(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/);
        expect(seen.has(`${type}/${object.metadata.name}`), `${type} ${object.metadata.name} once`).toBe(
          false,
        );
        seen.add(`${type}/${object.metadata.name}`);
        expect(object.metadata.labels).toMatchObject({
          "app.kubernetes.io/name": "steward",
          "app.kubernetes.io/instance": "steward",
          "app.kubernetes.io/managed-by": "Helm",
        });
        // The chart only refers to Secrets; it never holds one.
        expect(object.kind).not.toBe("Secret");
      }
    }
  });

  it("gives the API liveness on /health and readiness on /ready, the routes Steward serves", () => {
    const api = container(find<IDeployment>(base, "Deployment", "steward-api"), "api");
    expect(api.args).toEqual(["node", "dist/main.js", "serve"]);
    expect(api.livenessProbe?.httpGet).toEqual({ path: "/health", port: "http" });
    expect(api.readinessProbe?.httpGet).toEqual({ path: "/ready", port: "http" });
    expect(api.startupProbe?.httpGet).toEqual({ path: "/health", port: "http" });
    expect(api.ports).toEqual([{ name: "http", containerPort: 8080, protocol: "TCP" }]);
    const routes = read(join(ROOT, "src/observability/health.routes.ts"));
    expect(routes).toContain('"/health"');
    expect(routes).toContain('"/ready"');
    // The port follows config.PORT.
    const moved = render({ config: { PORT: 9090 } });
    expect(
      container(find<IDeployment>(moved, "Deployment", "steward-api"), "api").ports?.[0]?.containerPort,
    ).toBe(9090);
    expect(find<IConfigMap>(moved, "ConfigMap").data?.PORT).toBe("9090");
  });

  it("sends the Service to the API pods' http port only, never to workers", () => {
    const service = find<IService>(base, "Service");
    const apiPods = find<IDeployment>(base, "Deployment", "steward-api").spec?.template.metadata?.labels;
    const workerPods = find<IDeployment>(base, "Deployment", "steward-worker").spec?.template.metadata
      ?.labels;
    expect(matches(service.spec?.selector, apiPods)).toBe(true);
    expect(matches(service.spec?.selector, workerPods)).toBe(false);
    expect(service.spec?.ports?.[0]?.targetPort).toBe("http");
    const ingress = find<IIngress>(everything, "Ingress");
    const backend = ingress.spec?.rules?.[0]?.http?.paths[0]?.backend.service;
    expect(backend).toEqual({ name: service.metadata?.name, port: { name: "http" } });
  });

  it("migrates in an init container running the image's scripts/run-migrations.sh with what it reads", () => {
    const deployment = find<IDeployment>(base, "Deployment", "steward-api");
    const init = pod(deployment).initContainers ?? [];
    expect(init.map((item) => item.name)).toEqual(["migrations"]);
    const migrations = init[0];
    // Where deploy/Dockerfile puts the script: its runtime WORKDIR and COPY destination.
    const dockerfile = read(join(ROOT, "deploy/Dockerfile"));
    const runtimeStage = dockerfile.slice(dockerfile.lastIndexOf("\nFROM "));
    const workdir = /^WORKDIR\s+(\S+)/m.exec(runtimeStage)?.[1];
    const destination = /^COPY\s+scripts\/run-migrations\.sh\s+(\S+)/m.exec(runtimeStage)?.[1];
    expect(migrations?.command).toEqual(["bash", join(workdir ?? "", destination ?? "")]);
    expect(migrations?.image).toBe(container(deployment, "api").image);
    const script = read(join(ROOT, "scripts/run-migrations.sh"));
    const env = Object.fromEntries((migrations?.env ?? []).map((item) => [item.name, item]));
    for (const name of Object.keys(env)) expect(script).toContain(`${name}:-`);
    expect(env.DATABASE_URL?.valueFrom?.secretKeyRef).toEqual({ name: "steward-database", key: "url" });
    expect(env.STEWARD_DB_SCHEMA?.value).toBe("public");
    // A direct connection for migrations when the app goes through PgBouncer.
    const direct = pod(find<IDeployment>(everything, "Deployment", "steward-api")).initContainers?.[0]?.env;
    expect(direct?.find((item) => item.name === "DATABASE_URL")?.valueFrom?.secretKeyRef?.name).toBe(
      "steward-database-direct",
    );
    const off = render({ migrations: { enabled: false } });
    expect(pod(find<IDeployment>(off, "Deployment", "steward-api")).initContainers).toBeUndefined();
  });

  it("runs `steward worker` apart, scaled by its HPA on CPU, or by its own replica count", () => {
    const deployment = find<IDeployment>(base, "Deployment", "steward-worker");
    const worker = container(deployment, "worker");
    expect(worker.args).toEqual(["node", "dist/main.js", "worker"]);
    expect(worker.ports).toEqual([{ name: "http", containerPort: 8081, protocol: "TCP" }]);
    expect(worker.env).toContainEqual({ name: "STEWARD_WORKER_PORT", value: "8081" });
    expect(worker.livenessProbe?.httpGet).toEqual({ path: "/health", port: "http" });
    expect(worker.readinessProbe?.httpGet).toEqual({ path: "/ready", port: "http" });
    expect(worker.startupProbe?.httpGet).toEqual({ path: "/health", port: "http" });
    expect(read(join(ROOT, "src/main.ts"))).toMatch(/command === "worker"/);
    expect(deployment.spec?.replicas, "the HPA owns the replica count").toBeUndefined();
    const hpa = find<IHorizontalPodAutoscaler>(base, "HorizontalPodAutoscaler");
    expect(hpa.spec?.scaleTargetRef).toEqual({
      apiVersion: "apps/v1",
      kind: "Deployment",
      name: "steward-worker",
    });
    expect(hpa.spec?.metrics?.[0]?.resource).toEqual({
      name: "cpu",
      target: { type: "Utilization", averageUtilization: 70 },
    });
    expect(worker.resources?.requests?.cpu).toBeDefined();
    const fixed = find<IDeployment>(everything, "Deployment", "steward-worker");
    expect(fixed.spec?.replicas).toBe(2);
    expect(container(fixed, "worker").env).toContainEqual({ name: "STEWARD_JOBS_CONCURRENCY", value: "16" });
  });

  it("gives every pod longer to stop than Steward's own shutdown deadline", () => {
    // Past delay + timeout Steward allows itself a few seconds to close connections, then exits.
    const exitGraceSeconds =
      Number(
        /EXIT_GRACE_MS = ([\d_]+)/.exec(read(join(ROOT, "src/main.ts")))?.[1]?.replace("_", "") ?? 5000,
      ) / 1000;
    const check = (rendered: Rendered, name: string, component: string) => {
      const deployment = find<IDeployment>(rendered, "Deployment", name);
      const env = {
        ...find<IConfigMap>(rendered, "ConfigMap").data,
        ...Object.fromEntries(
          (container(deployment, component).env ?? []).flatMap((item) =>
            item.value !== undefined ? [[item.name, item.value]] : [],
          ),
        ),
      };
      const { shutdown } = loadConfig({ ...env, STEWARD_ENCRYPTION_KEY: "a".repeat(64) }) as unknown as {
        shutdown?: { delayMs: number; timeoutMs: number };
      };
      const delay = shutdown ? shutdown.delayMs / 1000 : Number(env.STEWARD_SHUTDOWN_DELAY_SECONDS ?? 0);
      const timeout = shutdown
        ? shutdown.timeoutMs / 1000
        : Number(env.STEWARD_SHUTDOWN_TIMEOUT_SECONDS ?? 25);
      const grace = pod(deployment).terminationGracePeriodSeconds ?? 30;
      expect(grace, `${name}: ${delay} + ${timeout} + ${exitGraceSeconds} s`).toBeGreaterThan(
        delay + timeout + exitGraceSeconds,
      );
      return grace;
    };
    expect(check(base, "steward-api", "api")).toBe(40);
    // Workers give running jobs 150 s, an LLM call's whole timeout.
    expect(check(base, "steward-worker", "worker")).toBe(160);
    const long = render({ worker: { config: { STEWARD_SHUTDOWN_TIMEOUT_SECONDS: 600 } } });
    expect(check(long, "steward-worker", "worker")).toBe(610);
    expect(check(long, "steward-api", "api")).toBe(40);
  });

  it("puts settings in a ConfigMap Steward accepts as its configuration", () => {
    for (const rendered of [base, everything]) {
      const data = find<IConfigMap>(rendered, "ConfigMap").data ?? {};
      for (const name of Object.keys(data)) expect(configVariables, `${name} is read`).toContain(name);
      const config = loadConfig({
        ...data,
        DATABASE_URL: "postgres://steward@db:5432/steward",
        STEWARD_ENCRYPTION_KEY: Buffer.alloc(32, 7).toString("base64"),
        NATS_URL: "nats://nats:4222",
      });
      expect(config.env).toBe("production");
      expect(config.database.kind).toBe("postgres");
    }
    expect(find<IConfigMap>(everything, "ConfigMap").data?.STEWARD_BODY_LIMIT).toBe("2097152");
    // The pods roll when it changes.
    const checksum = createHash("sha256")
      .update(base.manifests["steward/templates/configmap.yaml"] ?? "")
      .digest("hex");
    for (const name of ["steward-api", "steward-worker"])
      expect(find<IDeployment>(base, "Deployment", name).spec?.template.metadata?.annotations).toMatchObject({
        "checksum/config": checksum,
      });
  });

  it("keeps every process's PostgreSQL pool, at the HPA's maximum, under the default max_connections", () => {
    const shared = find<IConfigMap>(base, "ConfigMap").data ?? {};
    const poolOf = (name: string, component: string) => {
      const own = container(find<IDeployment>(base, "Deployment", name), component).env?.find(
        (item) => item.name === "STEWARD_DB_POOL_SIZE",
      )?.value;
      return loadConfig({
        DATABASE_URL: "postgres://db/steward",
        STEWARD_DB_POOL_SIZE: own ?? shared.STEWARD_DB_POOL_SIZE,
      }).database as { poolSize: number };
    };
    const apiReplicas = find<IDeployment>(base, "Deployment", "steward-api").spec?.replicas ?? 1;
    const workerMax = find<IHorizontalPodAutoscaler>(base, "HorizontalPodAutoscaler").spec?.maxReplicas ?? 1;
    const total =
      apiReplicas * poolOf("steward-api", "api").poolSize +
      workerMax * poolOf("steward-worker", "worker").poolSize +
      1; // the migrations init container
    // PostgreSQL's default max_connections is 100, 3 of them reserved for superusers.
    expect(total).toBeLessThanOrEqual(97);
    expect(read(join(ROOT, "docs/operations.md"))).toContain(`**${total}**`);
  });

  it("takes every secret from existing Secrets, by reference", () => {
    const secretEnv = (rendered: Rendered, name: string, component: string) =>
      Object.fromEntries(
        (container(find<IDeployment>(rendered, "Deployment", name), component).env ?? []).flatMap((item) =>
          item.valueFrom?.secretKeyRef ? [[item.name, item.valueFrom.secretKeyRef]] : [],
        ),
      );
    const api = secretEnv(base, "steward-api", "api");
    expect(Object.keys(api).sort()).toEqual([
      "DATABASE_URL",
      "NATS_URL",
      "REDIS_URL",
      "STEWARD_ENCRYPTION_KEY",
      "STEWARD_ENCRYPTION_PREVIOUS_KEYS",
    ]);
    expect(api.STEWARD_ENCRYPTION_PREVIOUS_KEYS).toEqual({
      name: "steward-encryption",
      key: "previous",
      optional: true,
    });
    expect(secretEnv(base, "steward-worker", "worker")).toEqual(api);
    const full = secretEnv(everything, "steward-api", "api");
    expect(full.STEWARD_NATS_ACCOUNT_SEED).toEqual({ name: "steward-nats", key: "account-seed" });
    expect(full.OPENAI_API_KEY).toEqual({ name: "steward-llm", key: "openai" });
    for (const name of Object.keys(full)) expect(configVariables, `${name} is read`).toContain(name);
    const noRedis = render({ secrets: { redisUrl: { name: "" } } });
    expect(secretEnv(noRedis, "steward-api", "api").REDIS_URL).toBeUndefined();
    expect(noRedis.notes).toMatch(/WARNING: no REDIS_URL/);
  });

  it("refuses to render without the Secrets Steward cannot run without", () => {
    expect(() => render({ secrets: { databaseUrl: { name: "" } } }, { skipSchema: true })).toThrow(
      /secrets.databaseUrl.name is required/,
    );
    expect(() => render({ secrets: { encryptionKey: { name: "" } } }, { skipSchema: true })).toThrow(
      /secrets.encryptionKey.name is required/,
    );
    expect(() => render({ secrets: { natsUrl: { name: "" } } })).toThrow(
      /worker.enabled needs secrets.natsUrl/,
    );
    expect(
      render({ secrets: { natsUrl: { name: "" } }, worker: { enabled: false } }).objects,
    ).not.toContainEqual(expect.objectContaining({ kind: "HorizontalPodAutoscaler" }));
    expect(() => render({ worker: { resources: { requests: null } } })).toThrow(/requests.cpu/);
  });

  it("runs as the image's non-root user on a read-only root filesystem, writing only to emptyDirs", () => {
    const dockerfile = read(join(ROOT, "deploy/Dockerfile"));
    const imageUser = Number(/^USER\s+(\d+)/m.exec(dockerfile)?.[1]);
    const dataDir = /STEWARD_DATA_DIR=(\S+)/.exec(dockerfile)?.[1];
    for (const name of ["steward-api", "steward-worker"]) {
      const spec = pod(find<IDeployment>(everything, "Deployment", name));
      expect(spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: imageUser });
      expect(spec.automountServiceAccountToken).toBe(false);
      const emptyDirs = new Set(
        (spec.volumes ?? []).filter((volume) => volume.emptyDir).map((volume) => volume.name),
      );
      for (const item of [...(spec.initContainers ?? []), ...spec.containers]) {
        expect(item.securityContext).toMatchObject({
          readOnlyRootFilesystem: true,
          allowPrivilegeEscalation: false,
          capabilities: { drop: ["ALL"] },
        });
        const mounts = Object.fromEntries(
          (item.volumeMounts ?? []).map((mount) => [mount.mountPath, mount.name]),
        );
        expect(emptyDirs.has(mounts["/tmp"] ?? "")).toBe(true);
        expect(emptyDirs.has(mounts[dataDir ?? ""] ?? "")).toBe(true);
      }
    }
  });

  it("keeps a disruption budget per component, each selecting its own pods", () => {
    for (const [name, budget] of [
      ["steward-api", { minAvailable: 1 }],
      ["steward-worker", { maxUnavailable: 1 }],
    ] as const) {
      const pdb = find<IPodDisruptionBudget>(base, "PodDisruptionBudget", name);
      expect(pdb.spec).toMatchObject(budget);
      const labels = find<IDeployment>(base, "Deployment", name).spec?.template.metadata?.labels;
      expect(matches(pdb.spec?.selector?.matchLabels, labels)).toBe(true);
    }
  });

  it("keeps no API budget for a single API pod, whose budget would block every node drain", () => {
    const single = render({ api: { replicas: 1 } });
    expect(
      single.objects.filter((object) => object.kind === "PodDisruptionBudget").map((o) => o.metadata.name),
    ).toEqual(["steward-worker"]);
  });

  it("scrapes /metrics of the API pods through the Service's http port", () => {
    const monitor = find<K8sObject>(everything, "ServiceMonitor") as K8sObject & {
      spec: {
        selector: { matchLabels: Record<string, string> };
        namespaceSelector: { matchNames: string[] };
        endpoints: Array<{ port: string; path: string; interval: string }>;
      };
    };
    const service = find<IService>(everything, "Service");
    expect(monitor.metadata.labels?.release).toBe("kube-prometheus-stack");
    expect(matches(monitor.spec.selector.matchLabels, service.metadata?.labels)).toBe(true);
    expect(monitor.spec.namespaceSelector.matchNames).toEqual(["agents"]);
    expect(monitor.spec.endpoints).toEqual([
      { port: "http", path: "/metrics", interval: "30s", scrapeTimeout: "10s" },
    ]);
    expect(service.spec?.ports?.map((port) => port.name)).toContain("http");
    expect(read(join(ROOT, "src/observability/metrics.routes.ts"))).toContain('"/metrics"');
  });

  it("scrapes /metrics of every worker pod on its own port, as no Service sends to workers", () => {
    const monitor = find<K8sObject>(everything, "PodMonitor") as K8sObject & {
      spec: {
        selector: { matchLabels: Record<string, string> };
        namespaceSelector: { matchNames: string[] };
        podMetricsEndpoints: Array<{ port: string; path: string; interval: string }>;
      };
    };
    const podLabels = (name: string) =>
      find<IDeployment>(everything, "Deployment", name).spec?.template.metadata?.labels;
    expect(monitor.metadata.labels?.release).toBe("kube-prometheus-stack");
    expect(matches(monitor.spec.selector.matchLabels, podLabels("steward-worker"))).toBe(true);
    expect(matches(monitor.spec.selector.matchLabels, podLabels("steward-api"))).toBe(false);
    expect(monitor.spec.namespaceSelector.matchNames).toEqual(["agents"]);
    expect(monitor.spec.podMetricsEndpoints).toEqual([
      { port: "http", path: "/metrics", interval: "30s", scrapeTimeout: "10s" },
    ]);
    const noWorkers = render({ ...EVERYTHING, worker: { enabled: false } });
    expect(noWorkers.objects.map((object) => object.kind)).not.toContain("PodMonitor");
  });

  it("lets pods reach DNS and the configured destinations only", () => {
    const policy = find<INetworkPolicy>(everything, "NetworkPolicy");
    expect(policy.spec?.policyTypes).toEqual(["Ingress", "Egress"]);
    expect(policy.spec?.ingress).toEqual([
      {
        ports: [{ port: "http", protocol: "TCP" }],
        from: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "ingress-nginx" } } }],
      },
    ]);
    const egress = policy.spec?.egress ?? [];
    // A rule without `to` would allow every destination.
    for (const rule of egress) expect(rule.to?.length ?? 0).toBeGreaterThan(0);
    const byPort = (port: number) => egress.filter((rule) => rule.ports?.some((item) => item.port === port));
    expect(byPort(53)[0]?.ports).toHaveLength(2);
    expect(byPort(5432).map((rule) => rule.to)).toEqual([[{ ipBlock: { cidr: "10.20.0.0/24" } }]]);
    expect(byPort(6379).map((rule) => rule.to)).toEqual([
      [{ podSelector: { matchLabels: { app: "redis" } } }],
    ]);
    expect(byPort(7422).map((rule) => rule.to)).toEqual([[{ ipBlock: { cidr: "10.30.0.5/32" } }]]);
    expect(egress).toHaveLength(5);
    // Enabled with no destination configured: DNS alone.
    const closed = find<INetworkPolicy>(render({ networkPolicy: { enabled: true } }), "NetworkPolicy");
    expect(closed.spec?.egress).toHaveLength(1);
    expect(closed.spec?.egress?.[0]?.ports?.every((item) => item.port === 53)).toBe(true);
    expect(closed.spec?.ingress?.[0]?.from).toBeUndefined();
  });

  it("declares the NACK streams and consumer exactly as deploy/nats/jetstream.yaml does", () => {
    const reference = parseAllDocuments(read(join(ROOT, "deploy/nats/jetstream.yaml")))
      .map((document) => document.toJS() as K8sObject | null)
      .filter((object): object is K8sObject => object !== null);
    const specOf = (objects: K8sObject[], kind: string, name: string) => {
      const found = objects.find(
        (object) =>
          object.kind === kind &&
          ((object.spec as Values).name === name || (object.spec as Values).durableName === name),
      );
      const { account, ...spec } = (found?.spec ?? {}) as Values;
      expect(found?.apiVersion).toBe("jetstream.nats.io/v1beta2");
      return { spec, account };
    };
    for (const [kind, name] of [
      ["Stream", "AGENT_EXECUTION"],
      ["Stream", "AGENT_EXECUTION_STATUS"],
      ["Consumer", "agent-executor-workers"],
    ] as const) {
      const rendered = specOf(everything.objects, kind, name);
      expect(rendered.spec).toEqual(specOf(reference, kind, name).spec);
      expect(rendered.account).toBe("steward");
    }
    // Other names and limits follow the settings Steward reads.
    const renamed = render({
      nack: { enabled: true },
      config: {
        STEWARD_JOBS_STREAM: "TEAM_JOBS",
        STEWARD_JOBS_SUBJECT_PREFIX: "team",
        STEWARD_JOBS_CONSUMER: "team-workers",
        STEWARD_JOBS_ACK_WAIT_S: 60,
        STEWARD_JOBS_MAX_DELIVER: 5,
      },
    });
    const settings = { ...find<IConfigMap>(renamed, "ConfigMap").data, STEWARD_ENV: "development" };
    const declared = jetStreamDeclarations(loadConfig(settings).executor);
    expect(specOf(renamed.objects, "Stream", declared.jobs.name).spec).toMatchObject({
      subjects: declared.jobs.subjects,
    });
    expect(specOf(renamed.objects, "Stream", declared.status.name).spec).toMatchObject({
      subjects: declared.status.subjects,
      republish: { source: declared.status.republish?.src, destination: declared.status.republish?.dest },
    });
    expect(specOf(renamed.objects, "Consumer", declared.consumer.durable_name ?? "").spec).toMatchObject({
      streamName: declared.consumer.stream,
      ackWait: `${Number(declared.consumer.ack_wait) / 1e9}s`,
      maxDeliver: declared.consumer.max_deliver,
    });
  });

  it("writes NOTES that point at the operations guide", () => {
    expect(base.notes).toContain("docs/operations.md");
    expect(base.notes).toMatch(/port-forward service\/steward 8080:80/);
    expect(everything.notes).toContain("https://steward.example.com/");
  });
});

// ---- Metrics used by the dashboard and the documented alerts ----

/** Every series name Steward's registry exposes, histogram and summary suffixes included. */
async function exposedSeries(): Promise<Set<string>> {
  const metrics = createMetrics();
  registerExecutorGauges(
    metrics.registry,
    { queue: "in_process", consumerLag: () => ({ pending: 0, ackPending: 0 }), streamSubscribers: () => 0 },
    createLogger("silent"),
  );
  const names = new Set<string>();
  for (const metric of await metrics.registry.getMetricsAsJSON()) {
    names.add(metric.name);
    const type = String(metric.type);
    if (type === "histogram")
      for (const suffix of ["_bucket", "_sum", "_count"]) names.add(metric.name + suffix);
    if (type === "summary") for (const suffix of ["_sum", "_count"]) names.add(metric.name + suffix);
  }
  return names;
}

const seriesIn = (expression: string) =>
  [...expression.matchAll(/\bsteward_[a-z0-9_]+/g)].map((match) => match[0]);

describe("deploy/grafana/steward-dashboard.json and the alerts in docs/operations.md", () => {
  const dashboard = JSON.parse(read(join(ROOT, "deploy/grafana/steward-dashboard.json"))) as {
    title: string;
    panels: Array<{ title: string; type: string; targets?: Array<{ expr: string }>; panels?: unknown[] }>;
    templating?: { list: Array<{ query?: unknown; definition?: string }> };
  };

  it("is a dashboard whose every panel queries Steward's own metrics", async () => {
    const exposed = await exposedSeries();
    expect(dashboard.title).toMatch(/Steward/);
    const panels = dashboard.panels.filter((panel) => panel.type !== "row");
    expect(panels.length).toBeGreaterThanOrEqual(8);
    for (const panel of panels) {
      const expressions = (panel.targets ?? []).map((target) => target.expr);
      expect(expressions.length, panel.title).toBeGreaterThan(0);
      for (const expression of expressions) {
        const names = seriesIn(expression);
        expect(names.length, `${panel.title}: ${expression}`).toBeGreaterThan(0);
        for (const name of names) expect(exposed, `${panel.title}: ${name}`).toContain(name);
      }
    }
    for (const variable of dashboard.templating?.list ?? [])
      for (const name of seriesIn(JSON.stringify(variable))) expect(exposed).toContain(name);
  });

  it("covers every metric Steward registers itself", async () => {
    const used = new Set(
      dashboard.panels.flatMap((panel) => (panel.targets ?? []).flatMap((target) => seriesIn(target.expr))),
    );
    const own = [
      ...read(join(ROOT, "src/observability/metrics.ts")).matchAll(/name: "(steward_[a-z_]+)"/g),
    ].map((match) => match[1] as string);
    expect(own.length).toBeGreaterThan(0);
    for (const name of [...own, "steward_jobs_consumer_pending", "steward_jobs_consumer_ack_pending"])
      expect(
        [...used].some((series) => series.startsWith(name)),
        name,
      ).toBe(true);
  });

  it("documents alert rules on metrics Steward exposes", async () => {
    const exposed = await exposedSeries();
    const docs = read(join(ROOT, "docs/operations.md"));
    const blocks = [...docs.matchAll(/```yaml\n([\s\S]*?)```/g)].map((match) => match[1] as string);
    const rules = blocks
      .map(
        (block) => parseYaml(block) as { groups?: Array<{ rules: Array<{ alert: string; expr: string }> }> },
      )
      .flatMap((document) => document?.groups ?? [])
      .flatMap((group) => group.rules);
    expect(rules.length).toBeGreaterThanOrEqual(6);
    for (const rule of rules) {
      expect(rule.alert).toMatch(/^Steward/);
      for (const name of seriesIn(rule.expr)) expect(exposed, `${rule.alert}: ${name}`).toContain(name);
    }
  });
});
