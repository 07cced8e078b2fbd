import { describe, expect, it } from "vitest";
import { sealSecrets, unsealSecrets } from "../../src/agents/credentials.js";
import { PLATFORM_CONFIG_SPECS } from "../../src/agents/platform-config.js";
import { planRow } from "../../src/crypto/key-rotation.js";
import { SEALED_TABLES, type SealedTable } from "../../src/crypto/sealed-columns.js";
import { keyIdOf, SecretBox } from "../../src/crypto/secret-box.js";
import { sealWebhookSecret, signingSecrets } from "../../src/delivery/webhooks/webhook-secret.js";

/** The in-memory half of `steward keys rotate`: which values a row holds, and how each is re-sealed. */

const KEY_A = Buffer.alloc(32, 0x0a);
const KEY_B = Buffer.alloc(32, 0x0b);
const onA = new SecretBox(KEY_A);
const rotating = new SecretBox(KEY_B, [KEY_A]);
const onlyB = new SecretBox(KEY_B);

const AGENT = "agt_01jc0000000000000000000000";
const SUBSCRIPTION = "whs_01jc0000000000000000000000";
const customHttp = PLATFORM_CONFIG_SPECS.custom_http.secretPaths;
const PLATFORM = {
  webhook_url: "https://hooks.example.com/results/CANARY-url-5555",
  headers: { "X.Dotted-Token": "header-secret-CANARY-6666", Authorization: "Bearer CANARY-7777" },
};

function table(name: string): SealedTable {
  const found = SEALED_TABLES.find((candidate) => candidate.name === name);
  if (!found) throw new Error(`no sealed table ${name}`);
  return found;
}

const agents = table("external_agents");
const webhooks = table("webhook_subscriptions");

function agentRow(platformConfig: Record<string, unknown>, authConfig: Record<string, unknown> = {}) {
  return { id: AGENT, auth_config: authConfig, platform_config: platformConfig };
}

describe("planRow", () => {
  it("re-seals top-level and map values under the contexts they were sealed with, keeping the hints", () => {
    const stored = sealSecrets(PLATFORM, customHttp, onA, { agentId: AGENT, section: "platform_config" });
    const before = structuredClone(stored);
    const plan = planRow(agents, agentRow(stored), rotating);

    expect(plan).toMatchObject({ resealed: 3, current: 0, failures: [] });
    expect(stored).toEqual(before);
    const updated = plan.changes.platform_config as Record<string, unknown>;
    expect(JSON.stringify(updated)).not.toContain(`v1.${keyIdOf(KEY_A)}.`);
    expect(JSON.stringify(updated).match(new RegExp(`v1\\.${keyIdOf(KEY_B)}\\.`, "g"))).toHaveLength(3);
    expect(unsealSecrets(updated, customHttp, onlyB, { agentId: AGENT, section: "platform_config" })).toEqual(
      PLATFORM,
    );
    expect(maskedHints(updated)).toEqual(maskedHints(stored));
    expect(plan.changes).not.toHaveProperty("auth_config");
  });

  it("leaves values on the current key as they are, and counts them", () => {
    const stored = sealSecrets(PLATFORM, customHttp, rotating, {
      agentId: AGENT,
      section: "platform_config",
    });
    expect(planRow(agents, agentRow(stored), rotating)).toEqual({
      changes: {},
      resealed: 0,
      current: 3,
      failures: [],
    });
  });

  it("names the row and field of a value no configured key opens, and never its plaintext", () => {
    const stored = sealSecrets(PLATFORM, customHttp, onA, { agentId: AGENT, section: "platform_config" });
    const plan = planRow(agents, agentRow(stored), onlyB);
    expect(plan.resealed).toBe(0);
    expect(plan.failures.map((failure) => failure.field).sort()).toEqual([
      "platform_config.headers.Authorization",
      "platform_config.headers.X.Dotted-Token",
      "platform_config.webhook_url",
    ]);
    expect(plan.failures[0]).toMatchObject({
      table: "external_agents",
      id: AGENT,
      reason: `cannot decrypt stored secret: unknown key id ${keyIdOf(KEY_A)}`,
    });
    const text = JSON.stringify(plan.failures);
    for (const secret of [PLATFORM.webhook_url, ...Object.values(PLATFORM.headers)]) {
      expect(text).not.toContain(secret);
    }
  });

  it("refuses a sealed value moved to another agent: its context no longer matches", () => {
    const stored = sealSecrets(PLATFORM, customHttp, onA, { agentId: AGENT, section: "platform_config" });
    const plan = planRow(agents, { ...agentRow(stored), id: "agt_01jcother000000000000000000" }, rotating);
    expect(plan.resealed).toBe(0);
    expect(plan.failures).toHaveLength(3);
    expect(plan.failures[0]?.reason).toMatch(/authentication failed/);
  });

  it("reports a sealed value deeper than Steward ever stores one instead of guessing its context", () => {
    const sealed = onA.seal("x", "unknown");
    const plan = planRow(agents, agentRow({ nested: { deeper: [{ $sealed: sealed, hint: "" }] } }), rotating);
    expect(plan.failures).toEqual([
      {
        table: "external_agents",
        id: AGENT,
        field: "platform_config.nested.deeper.0",
        reason: "a sealed value where Steward never stores one",
      },
    ]);
  });

  it("re-seals a webhook subscription's current and previous secret under the subscription's context", () => {
    const secret = sealWebhookSecret(onA, SUBSCRIPTION, "whsec_current");
    const previous = sealWebhookSecret(onA, SUBSCRIPTION, "whsec_previous");
    const row = { id: SUBSCRIPTION, secret, previous_secret: previous };
    const plan = planRow(webhooks, row, rotating);
    expect(plan).toMatchObject({ resealed: 2, current: 0, failures: [] });
    const rotated = {
      id: SUBSCRIPTION,
      secret: plan.changes.secret as Record<string, unknown>,
      previousSecret: plan.changes.previous_secret as Record<string, unknown>,
      previousSecretUntil: new Date(2_000),
    };
    expect(signingSecrets(onlyB, rotated, 1_000)).toEqual(["whsec_current", "whsec_previous"]);
  });

  it("skips an empty previous secret and reports a column that holds no sealed value", () => {
    expect(
      planRow(webhooks, { id: SUBSCRIPTION, secret: { plain: "x" }, previous_secret: null }, rotating),
    ).toEqual({
      changes: {},
      resealed: 0,
      current: 0,
      failures: [
        { table: "webhook_subscriptions", id: SUBSCRIPTION, field: "secret", reason: "not a sealed value" },
      ],
    });
  });
});

function maskedHints(config: Record<string, unknown>): unknown {
  return JSON.parse(JSON.stringify(config), (key, value) => (key === "$sealed" ? undefined : value));
}
