import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { eq } from "drizzle-orm";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CreateAgentBody } from "../../src/agents/agent.schemas.js";
import { ExternalAgentService } from "../../src/agents/agent.service.js";
import { unsealSecrets } from "../../src/agents/credentials.js";
import { PLATFORM_CONFIG_SPECS } from "../../src/agents/platform-config.js";
import { rotateStoredSecrets } from "../../src/crypto/key-rotation.js";
import { keyIdOf, SecretBox } from "../../src/crypto/secret-box.js";
import { type Database, openDatabase } from "../../src/db/database.js";
import { runMigrations } from "../../src/db/migrate.js";
import { auditEvents, externalAgents, webhookSubscriptions } from "../../src/db/schema.js";
import { WebhookService } from "../../src/delivery/webhooks/webhook.service.js";
import { signingSecrets } from "../../src/delivery/webhooks/webhook-secret.js";
import { SECRETS, slackAgent, telegramAgent } from "../helpers/agents.js";
import { until } from "../helpers/eventually.js";
import { openTestDatabase } from "../helpers/schema.js";
import { TEST_DATABASE_URL } from "../helpers/services.js";
import { stewardCommand } from "../helpers/steward-process.js";

/**
 * `steward keys rotate`: secrets stored under key A through the services that seal them,
 * then Steward switched to key B with A as previous, and the command run as operators
 * run it (a child process), against PostgreSQL and the embedded store.
 */

const ROOT = new URL("../..", import.meta.url).pathname;
const KEY_A = randomBytes(32);
const KEY_B = randomBytes(32);
const A = keyIdOf(KEY_A);
const B = keyIdOf(KEY_B);
const onA = new SecretBox(KEY_A);
const rotating = new SecretBox(KEY_B, [KEY_A]);
const onlyB = new SecretBox(KEY_B);
const noCheck = { checkUrl: async () => null };
const context = { actor: { type: "system" as const, id: "key-rotation-test" } };
const HOOK = {
  url: "https://hooks.example.test/steward",
  events: ["external_agent.rate_limit.exceeded" as const],
};

const CUSTOM_HEADERS = {
  "X.Dotted-Token": "auth-header-CANARY-8888",
  "X-Api-Secret": "auth-header-CANARY-9999",
};
const CUSTOM_PLATFORM = {
  webhook_url: "https://results.example.com/in/CANARY-url-5555",
  headers: { Authorization: "Bearer delivery-CANARY-6666" },
};
const customAgent = {
  name: "custom",
  platform: "custom_http",
  webhook_url: "https://agent.example.com/custom",
  auth_type: "custom",
  auth_config: { headers: CUSTOM_HEADERS },
  platform_config: CUSTOM_PLATFORM,
};
/** Every plaintext stored in the tests: none may appear in the command's output. */
const PLAINTEXTS = [
  ...Object.values(SECRETS),
  "bearer-token-value-4444",
  ...Object.values(CUSTOM_HEADERS),
  CUSTOM_PLATFORM.webhook_url,
  CUSTOM_PLATFORM.headers.Authorization,
];

function body(value: Record<string, unknown>): CreateAgentBody {
  return value as unknown as CreateAgentBody;
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `steward keys rotate …` as its own process, from the sources. */
function runRotate(env: Record<string, string>, args: string[] = []): Promise<Run> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  for (const name of [
    "DATABASE_URL",
    "POSTGRES_HOST",
    "STEWARD_ENCRYPTION_KEY",
    "STEWARD_ENCRYPTION_PREVIOUS_KEYS",
  ]) {
    if (!(name in env)) delete childEnv[name];
  }
  const [node, command] = stewardCommand(["keys", "rotate", ...args]);
  const child = spawn(node, command, {
    cwd: ROOT,
    env: childEnv,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk) => (stdout += chunk));
  child.stderr.on("data", (chunk) => (stderr += chunk));
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

function keys(current: Buffer, ...previous: Buffer[]): Record<string, string> {
  const env: Record<string, string> = { STEWARD_ENCRYPTION_KEY: current.toString("base64") };
  if (previous.length > 0) {
    env.STEWARD_ENCRYPTION_PREVIOUS_KEYS = previous.map((key) => key.toString("hex")).join(",");
  }
  return env;
}

function expectNoSecrets(run: Run): void {
  const output = run.stdout + run.stderr;
  for (const secret of PLAINTEXTS) expect(output).not.toContain(secret);
  for (const key of [KEY_A, KEY_B]) {
    expect(output).not.toContain(key.toString("base64"));
    expect(output).not.toContain(key.toString("hex"));
  }
}

/** The sealed columns as stored, to tell whether anything was written. */
async function sealedColumns(database: Database): Promise<string> {
  const agents = await database.pool.query(
    "SELECT id, auth_config, platform_config FROM external_agents ORDER BY id",
  );
  const hooks = await database.pool.query(
    "SELECT id, secret, previous_secret FROM webhook_subscriptions ORDER BY id",
  );
  return JSON.stringify([agents.rows, hooks.rows]);
}

/** Per table, the rows whose text anywhere holds a value sealed with `keyId`: every table, every column. */
async function rowsSealedWith(database: Database, keyId: string): Promise<Record<string, number>> {
  const { rows: tables } = await database.pool.query<{ name: string }>(
    "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = $1 AND table_type = 'BASE TABLE'",
    [database.schema],
  );
  const found: Record<string, number> = {};
  for (const { name } of tables) {
    const { rows } = await database.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM "${name}" AS r WHERE r::text LIKE $1`,
      [`%v1.${keyId}.%`],
    );
    if ((rows[0]?.n ?? 0) > 0) found[name] = rows[0]?.n ?? 0;
  }
  return found;
}

/** The audit events `keys rotate` wrote. */
function rotationAudit(database: Database) {
  return database.db.select().from(auditEvents).where(eq(auditEvents.action, "secrets.reencrypted"));
}

describe("steward keys rotate on PostgreSQL", () => {
  let database: Database;
  let env: Record<string, string>;
  const ids: Record<string, string> = {};
  const hookSecrets: Record<string, string[]> = {};
  let viewsBefore: unknown;

  async function views(service: ExternalAgentService, hooks: WebhookService): Promise<unknown> {
    return {
      agents: await Promise.all(Object.values(ids).map((id) => service.get("org_a", id))),
      hooks: await Promise.all(Object.keys(hookSecrets).map((id) => hooks.get("org_a", id))),
    };
  }

  beforeAll(async () => {
    database = await openTestDatabase();
    env = { DATABASE_URL: TEST_DATABASE_URL, STEWARD_DB_SCHEMA: database.schema };
    // Stored under key A, through the services that seal them: 13 secrets in 6 rows.
    const agentsA = new ExternalAgentService(database.db, onA, noCheck);
    ids.slack = (await agentsA.create("org_a", body(slackAgent()), context)).id;
    ids.telegram = (await agentsA.create("org_a", body(telegramAgent()), context)).id;
    ids.custom = (await agentsA.create("org_a", body(customAgent), context)).id;
    ids.retired = (await agentsA.create("org_a", body(telegramAgent({ name: "retired" })), context)).id;
    await agentsA.delete("org_a", ids.retired, context);
    ids.plain = (
      await agentsA.create(
        "org_a",
        body({ name: "plain", platform: "custom_http", webhook_url: "https://a.example.com" }),
        context,
      )
    ).id;
    const hooksA = new WebhookService(database.db, onA, noCheck);
    const first = await hooksA.create("org_a", HOOK, context);
    const rotated = await hooksA.rotateSecret("org_a", first.id, { overlap_seconds: 3600 }, context);
    hookSecrets[first.id] = [rotated.secret, first.secret];
    const second = await hooksA.create("org_a", HOOK, context);
    hookSecrets[second.id] = [second.secret];
    // Steward switched to key B, A kept as previous: new secrets go to B (2 more).
    const agentsB = new ExternalAgentService(database.db, rotating, noCheck);
    ids.fresh = (await agentsB.create("org_a", body(slackAgent({ name: "fresh" })), context)).id;
    viewsBefore = await views(agentsB, new WebhookService(database.db, rotating, noCheck));
  });
  afterAll(() => database?.close());

  it("--dry-run counts what would change and writes nothing", async () => {
    const before = await sealedColumns(database);
    const run = await runRotate({ ...env, ...keys(KEY_B, KEY_A) }, ["--dry-run"]);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("Dry run");
    expect(run.stdout).toContain(`would re-encrypt 13 secret(s) in 6 row(s); 2 already on key ${B}`);
    expect(await sealedColumns(database)).toBe(before);
    expect(await rotationAudit(database)).toEqual([]);
    expectNoSecrets(run);
  });

  it("re-seals every value not on the current key, reporting each table and the total", async () => {
    const run = await runRotate({ ...env, ...keys(KEY_B, KEY_A) });
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`key ${B}; previous key(s): ${A}`);
    expect(run.stdout).toContain(
      `external_agents: 6 row(s): re-encrypted 10 secret(s) in 4 row(s); 2 already on key ${B}`,
    );
    expect(run.stdout).toContain(
      `webhook_subscriptions: 2 row(s): re-encrypted 3 secret(s) in 2 row(s); 0 already on key ${B}`,
    );
    expect(run.stdout.trim().split("\n").at(-1)).toBe(
      `re-encrypted 13 secret(s) in 6 row(s); 2 already on key ${B}`,
    );
    expectNoSecrets(run);

    // No table keeps a copy on key A; every row that holds a secret names key B.
    expect(await rowsSealedWith(database, A)).toEqual({});
    expect(await rowsSealedWith(database, B)).toEqual({ external_agents: 5, webhook_subscriptions: 2 });
    // Each row re-sealed is on its organization's audit log, naming the key and columns only.
    const audited = await rotationAudit(database);
    expect(audited.map((event) => event.resourceId).sort()).toEqual(
      [ids.slack, ids.telegram, ids.custom, ids.retired, ...Object.keys(hookSecrets)].sort(),
    );
    for (const event of audited) {
      expect(event).toMatchObject({
        organizationId: "org_a",
        actorType: "system",
        actorId: "steward keys rotate",
      });
      expect(event.details).toMatchObject({ key_id: B });
    }
    expect(audited.find((event) => event.resourceId === ids.custom)?.details).toEqual({
      key_id: B,
      columns: ["auth_config", "platform_config"],
      values: 4,
    });
    expect(JSON.stringify(audited)).not.toMatch(/CANARY|v1\./);
    // Hints, versions and updated_at are as they were: the secrets did not change.
    expect(
      await views(
        new ExternalAgentService(database.db, onlyB, noCheck),
        new WebhookService(database.db, onlyB, noCheck),
      ),
    ).toEqual(viewsBefore);
  });

  it("leaves every secret opening to the same plaintext through the read paths, with key A gone", async () => {
    const agents = new ExternalAgentService(database.db, onlyB, noCheck);
    const cases = [
      { id: ids.slack, agent: slackAgent() },
      { id: ids.telegram, agent: telegramAgent() },
      { id: ids.custom, agent: customAgent },
      { id: ids.retired, agent: telegramAgent() },
      { id: ids.fresh, agent: slackAgent() },
    ];
    for (const { id, agent } of cases) {
      const loaded = await agents.loadForDelivery("org_a", id ?? "");
      expect((await agents.loadForInvocation("org_a", id ?? "")).authConfig).toEqual(agent.auth_config);
      expect(loaded.platformConfig).toEqual(agent.platform_config);
    }
    for (const [id, secrets] of Object.entries(hookSecrets)) {
      const [row] = await database.db
        .select()
        .from(webhookSubscriptions)
        .where(eq(webhookSubscriptions.id, id));
      if (!row) throw new Error(`subscription ${id} is gone`);
      expect(signingSecrets(onlyB, row, Date.now())).toEqual(secrets);
    }
  });

  it("re-seals nothing when run again", async () => {
    const before = await sealedColumns(database);
    const run = await runRotate({ ...env, ...keys(KEY_B, KEY_A) });
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`re-encrypted 0 secret(s) in 0 row(s); 15 already on key ${B}`);
    expect(await sealedColumns(database)).toBe(before);
    expect(await rotationAudit(database)).toHaveLength(6);
  });

  it("finds every value readable once key A is no longer configured", async () => {
    const run = await runRotate({ ...env, ...keys(KEY_B) }, ["--dry-run"]);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("no previous keys configured");
    expect(run.stdout).toContain(`would re-encrypt 0 secret(s) in 0 row(s); 15 already on key ${B}`);
  });

  it("refuses to run without STEWARD_ENCRYPTION_KEY", async () => {
    const run = await runRotate(env);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain("STEWARD_ENCRYPTION_KEY is required by `steward keys rotate`");
  });
});

describe("steward keys rotate with a tampered value", () => {
  let database: Database;
  let env: Record<string, string>;
  let victim: string;
  let bystander: string;

  beforeAll(async () => {
    database = await openTestDatabase();
    env = { DATABASE_URL: TEST_DATABASE_URL, STEWARD_DB_SCHEMA: database.schema, ...keys(KEY_B, KEY_A) };
    const agents = new ExternalAgentService(database.db, onA, noCheck);
    victim = (await agents.create("org_a", body(telegramAgent()), context)).id;
    bystander = (await agents.create("org_a", body(slackAgent()), context)).id;
    // One changed character in the authentication tag: still well-formed, no longer authentic.
    const [row] = await database.db.select().from(externalAgents).where(eq(externalAgents.id, victim));
    const sealed = (row?.authConfig.token as { $sealed: string } | undefined)?.$sealed ?? "";
    const parts = sealed.split(".");
    parts[3] = `${parts[3]?.startsWith("A") ? "B" : "A"}${parts[3]?.slice(1)}`;
    await database.pool.query(
      `UPDATE external_agents SET auth_config = jsonb_set(auth_config, '{token,$sealed}', to_jsonb($2::text)) WHERE id = $1`,
      [victim, parts.join(".")],
    );
  });
  afterAll(() => database?.close());

  it("exits non-zero naming the table, row and field, re-sealing everything else", async () => {
    const dry = await runRotate(env, ["--dry-run"]);
    expect(dry.code).toBe(1);
    expect(dry.stderr).toContain(`external_agents ${victim} auth_config.token: `);

    const run = await runRotate(env);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(
      `external_agents ${victim} auth_config.token: cannot decrypt stored secret: authentication failed`,
    );
    expect(run.stderr).toContain("steward: failed: 1 secret(s) in 1 row(s) cannot be re-encrypted");
    expect(run.stdout).toContain(`re-encrypted 3 secret(s) in 2 row(s); 0 already on key ${B}`);
    expectNoSecrets(run);
    expect(run.stdout + run.stderr).not.toContain("$sealed");

    const agents = new ExternalAgentService(database.db, onlyB, noCheck);
    expect((await agents.loadForDelivery("org_a", bystander)).platformConfig).toEqual(
      slackAgent().platform_config,
    );
    const [row] = await database.db.select().from(externalAgents).where(eq(externalAgents.id, victim));
    const platform = unsealSecrets(
      row?.platformConfig ?? {},
      PLATFORM_CONFIG_SPECS.telegram.secretPaths,
      onlyB,
      {
        agentId: victim,
        section: "platform_config",
      },
    );
    expect(platform).toEqual(telegramAgent().platform_config);
  });
});

describe("key rotation beside concurrent writers", () => {
  let database: Database;

  beforeAll(async () => {
    database = await openTestDatabase();
  });
  afterAll(() => database?.close());

  it("does not write a stale value over a secret changed through the API while its batch was in flight", async () => {
    await database.pool.query("DELETE FROM external_agents");
    const agentsA = new ExternalAgentService(database.db, onA, noCheck);
    const created = [
      (await agentsA.create("org_a", body(telegramAgent({ name: "one" })), context)).id,
      (await agentsA.create("org_a", body(telegramAgent({ name: "two" })), context)).id,
    ].sort();
    const [held, edited] = created as [string, string];

    // Hold the batch's first row, so the rotation waits in the middle of its transaction,
    // having read both rows; then change the second through the API and let go.
    const holder = await database.pool.connect();
    try {
      await holder.query("BEGIN");
      const { rows } = await holder.query<{ pid: number }>("SELECT pg_backend_pid() AS pid");
      await holder.query("SELECT id FROM external_agents WHERE id = $1 FOR UPDATE", [held]);
      const rotation = rotateStoredSecrets(database.pool, rotating, { batchSize: 2 });
      const waiting = async () => {
        const blocked = await database.pool.query(
          "SELECT 1 FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))",
          [rows[0]?.pid],
        );
        return blocked.rowCount === 1;
      };
      await until(waiting);
      expect(await waiting()).toBe(true);
      const agentsB = new ExternalAgentService(database.db, rotating, noCheck);
      await agentsB.update("org_a", edited, { auth_config: { token: "changed-meanwhile-token" } }, context);
      await holder.query("COMMIT");
      const result = await rotation;
      // The edited row was read again: its new token was sealed with key B by the API.
      expect(result.tables[0]).toMatchObject({
        rows: 2,
        changedRows: 2,
        resealed: 3,
        current: 1,
        failures: [],
      });
    } finally {
      holder.release();
    }

    const agents = new ExternalAgentService(database.db, onlyB, noCheck);
    expect((await agents.loadForInvocation("org_a", edited)).authConfig).toEqual({
      token: "changed-meanwhile-token",
    });
    expect((await agents.loadForDelivery("org_a", edited)).platformConfig).toEqual(
      telegramAgent().platform_config,
    );
    expect((await agents.loadForInvocation("org_a", held)).authConfig).toEqual(telegramAgent().auth_config);
    expect(await rowsSealedWith(database, A)).toEqual({});
  });

  it("re-seals each value exactly once when two runs go at the same time", async () => {
    await database.pool.query("DELETE FROM external_agents");
    const agentsA = new ExternalAgentService(database.db, onA, noCheck);
    for (let i = 0; i < 30; i++)
      await agentsA.create("org_a", body(telegramAgent({ name: `agent-${i}` })), context);

    const runs = await Promise.all([
      rotateStoredSecrets(database.pool, rotating, { batchSize: 4 }),
      rotateStoredSecrets(database.pool, rotating, { batchSize: 3 }),
    ]);
    const agentTables = runs.map((run) => run.tables.find((table) => table.table === "external_agents"));
    expect(agentTables.map((table) => table?.failures)).toEqual([[], []]);
    expect(agentTables.reduce((sum, table) => sum + (table?.resealed ?? 0), 0)).toBe(60);
    for (const table of agentTables) expect((table?.resealed ?? 0) + (table?.current ?? 0)).toBe(60);
    expect(await rowsSealedWith(database, A)).toEqual({});
  });
});

describe("steward keys rotate on the embedded store", () => {
  let dataDir: string;
  const silent = pino({ level: "silent" });

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "steward-key-rotation-"));
  });
  afterAll(() => rm(dataDir, { recursive: true, force: true }));

  it("re-seals the store's secrets while the server is stopped, and refuses while it runs", async () => {
    const env = { STEWARD_DATA_DIR: dataDir, ...keys(KEY_B, KEY_A) };
    let database = await openDatabase({ kind: "embedded", dataDir }, silent);
    let id: string;
    try {
      await runMigrations(database.pool, database.schema);
      await database.pool.query("INSERT INTO organizations (id, name) VALUES ('org_a', 'A')");
      id = (
        await new ExternalAgentService(database.db, onA, noCheck).create(
          "org_a",
          body(telegramAgent()),
          context,
        )
      ).id;
      const busy = await runRotate(env);
      expect(busy.code).toBe(1);
      expect(busy.stderr).toMatch(/is in use by another Steward process .*; stop it first/);
    } finally {
      await database.close();
    }

    const run = await runRotate(env);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`re-encrypted 2 secret(s) in 1 row(s); 0 already on key ${B}`);
    expectNoSecrets(run);

    database = await openDatabase({ kind: "embedded", dataDir }, silent);
    try {
      const agents = new ExternalAgentService(database.db, onlyB, noCheck);
      expect((await agents.loadForInvocation("org_a", id)).authConfig).toEqual(telegramAgent().auth_config);
      expect((await agents.loadForDelivery("org_a", id)).platformConfig).toEqual(
        telegramAgent().platform_config,
      );
    } finally {
      await database.close();
    }
  }, 180_000);
});
