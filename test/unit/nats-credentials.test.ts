import {
  type ClaimsData,
  createAccount,
  createOperator,
  createUser,
  decode,
  parseCreds,
  type User,
} from "@nats-io/jwt";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type AgentSubjects,
  agentSubjectPermissions,
  NatsAccountSeedError,
  NatsCredentialIssuer,
  NatsSubjectError,
} from "../../src/lifecycle/nats-credentials.js";

const AGENT: AgentSubjects = {
  agentId: "scanner-3f2a",
  subscribedTopics: ["scans.requested.*", "repos.>"],
  findingsTopic: "findings.security",
};
const NOW = new Date("2026-03-01T12:00:00.500Z");

function seedOf(pair: { getSeed(): Uint8Array }): string {
  return new TextDecoder().decode(pair.getSeed());
}

/** True when NATS would deliver a message on `subject` to a subscription on `pattern`. */
function matches(pattern: string, subject: string): boolean {
  const p = pattern.split(".");
  const s = subject.split(".");
  for (let i = 0; i < p.length; i++) {
    if (p[i] === ">") return s.length > i;
    if (i >= s.length || (p[i] !== "*" && p[i] !== s[i])) return false;
  }
  return p.length === s.length;
}

async function issued(expiresInS = 3600) {
  const account = createAccount();
  const issuer = new NatsCredentialIssuer(seedOf(account), { clock: () => NOW });
  const credentials = await issuer.issue(AGENT, expiresInS);
  const parsed = await parseCreds(new TextEncoder().encode(credentials.creds));
  return { account, issuer, credentials, parsed, claims: decode<User>(parsed.jwt) as ClaimsData<User> };
}

describe("agentSubjectPermissions", () => {
  it("lists the agent's own subjects, its findings topic, its topics and the reply inboxes", () => {
    expect(agentSubjectPermissions(AGENT)).toEqual({
      publish: [
        "agents.scanner-3f2a.heartbeat",
        "agents.scanner-3f2a.metrics",
        "agents.scanner-3f2a.logs",
        "findings.security",
      ],
      subscribe: ["agents.scanner-3f2a.control", "scans.requested.*", "repos.>", "_INBOX.>"],
    });
  });

  it("lists a subject once when a topic repeats one already granted", () => {
    const permissions = agentSubjectPermissions({
      agentId: "a1",
      subscribedTopics: ["agents.a1.control", "x.y", "x.y"],
      findingsTopic: "agents.a1.logs",
    });
    expect(permissions.publish).toEqual(["agents.a1.heartbeat", "agents.a1.metrics", "agents.a1.logs"]);
    expect(permissions.subscribe).toEqual(["agents.a1.control", "x.y", "_INBOX.>"]);
  });

  it.each(["a.b", "a*", "*", ">", "a b", "", "a\u0000b"])(
    "refuses agent id %j, which is not one subject token",
    (agentId) => {
      expect(() => agentSubjectPermissions({ ...AGENT, agentId })).toThrow(NatsSubjectError);
    },
  );

  it.each([
    [">", "a full wildcard"],
    ["*.control", "a leading wildcard"],
    ["agents.other.control", "another agent's control"],
    ["agents.*.control", "every agent's control"],
    ["agents.>", "every agent's subjects"],
    ["$JS.API.>", "the JetStream API"],
    ["a..b", "an empty token"],
    ["a.>.b", "a non-final >"],
    ["a.b*", "a partial wildcard"],
    ["a b", "whitespace"],
  ])("refuses subscribed topic %j (%s)", (topic) => {
    expect(() => agentSubjectPermissions({ ...AGENT, subscribedTopics: [topic] })).toThrow(NatsSubjectError);
  });

  it.each([
    ["findings.*", "a wildcard"],
    ["findings.>", "a wildcard"],
    ["agents.other.control", "another agent's control"],
    ["$JS.API.STREAM.DELETE.FINDINGS", "the JetStream API"],
    ["_INBOX.abc", "a reply inbox"],
    ["", "an empty subject"],
  ])("refuses findings topic %j (%s)", (findingsTopic) => {
    expect(() => agentSubjectPermissions({ ...AGENT, findingsTopic })).toThrow(NatsSubjectError);
  });

  it("allows topics under the agent's own prefix", () => {
    const permissions = agentSubjectPermissions({
      agentId: "a1",
      subscribedTopics: ["agents.a1.>"],
      findingsTopic: "agents.a1.findings",
    });
    expect(permissions.subscribe).toContain("agents.a1.>");
    expect(permissions.publish).toContain("agents.a1.findings");
  });

  it("never grants another agent's subjects, whatever topics it accepts", () => {
    const token = fc.constantFrom("agents", "a1", "a2", "*", ">", "control", "logs", "$JS", "_INBOX");
    const subject = fc.array(token, { minLength: 1, maxLength: 4 }).map((tokens) => tokens.join("."));
    fc.assert(
      fc.property(fc.array(subject, { maxLength: 4 }), subject, (subscribedTopics, findingsTopic) => {
        let permissions: { publish: string[]; subscribe: string[] };
        try {
          permissions = agentSubjectPermissions({ agentId: "a1", subscribedTopics, findingsTopic });
        } catch (error) {
          expect(error).toBeInstanceOf(NatsSubjectError);
          return;
        }
        for (const kind of ["control", "heartbeat", "metrics", "logs"]) {
          const foreign = `agents.a2.${kind}`;
          expect(permissions.subscribe.filter((pattern) => matches(pattern, foreign))).toEqual([]);
          expect(permissions.publish).not.toContain(foreign);
        }
        expect(permissions.publish.some((s) => s.startsWith("$") || s.startsWith("_INBOX."))).toBe(false);
      }),
      { numRuns: 2_000 },
    );
  });
});

describe("NatsCredentialIssuer", () => {
  it("signs a user JWT whose permissions are exactly the agent's lists", async () => {
    const { account, claims } = await issued();
    const { publish, subscribe } = agentSubjectPermissions(AGENT);
    expect(claims.iss).toBe(account.getPublicKey());
    expect(claims.name).toBe(AGENT.agentId);
    expect(claims.nats.type).toBe("user");
    expect(claims.nats.pub).toEqual({ allow: publish, deny: [] });
    expect(claims.nats.sub).toEqual({ allow: subscribe, deny: [] });
  });

  it("expires the JWT expiresInS after the clock's now, in whole seconds", async () => {
    const { credentials, claims } = await issued(90);
    const expected = Math.floor(NOW.getTime() / 1000) + 90;
    expect(claims.exp).toBe(expected);
    expect(credentials.expiresAt).toEqual(new Date(expected * 1000));
  });

  it("writes a .creds file holding the JWT and the seed of the user it names", async () => {
    const { credentials, parsed, issuer } = await issued();
    expect(credentials.creds).toMatch(/^-----BEGIN NATS USER JWT-----\n/);
    expect(credentials.creds).toContain("-----BEGIN USER NKEY SEED-----");
    expect(parsed.key).toMatch(/^SU/);
    expect(parsed.uc.sub).toBe(credentials.publicKey);
    expect(credentials.publicKey).toMatch(/^U/);
    expect(parsed.aid).toBe(issuer.accountPublicKey);
  });

  it("signs with an account signing key on behalf of the account it is told", async () => {
    const account = createAccount();
    const signingKey = createAccount();
    const issuer = new NatsCredentialIssuer(seedOf(signingKey), { account: account.getPublicKey() });
    const { creds } = await issuer.issue(AGENT, 60);
    const parsed = await parseCreds(new TextEncoder().encode(creds));

    expect(issuer.accountPublicKey).toBe(account.getPublicKey());
    expect(parsed.uc.iss).toBe(signingKey.getPublicKey());
    expect(parsed.uc.nats.issuer_account).toBe(account.getPublicKey());
    expect(parsed.aid).toBe(account.getPublicKey());
  });

  it("leaves issuer_account out when the seed is the account's own key", async () => {
    const { claims } = await issued();
    expect(claims.nats.issuer_account).toBeUndefined();
  });

  it.each([
    ["a user public key", createUser().getPublicKey()],
    ["an account seed", seedOf(createAccount())],
    ["garbage", "ANOTAKEY"],
  ])("refuses %s as the account public key", (_kind, account) => {
    expect(() => new NatsCredentialIssuer(seedOf(createAccount()), { account })).toThrow(
      NatsAccountSeedError,
    );
  });

  it("gives every issue a fresh user key", async () => {
    const issuer = new NatsCredentialIssuer(seedOf(createAccount()));
    const first = await issuer.issue(AGENT, 60);
    const second = await issuer.issue(AGENT, 60);
    expect(first.publicKey).not.toBe(second.publicKey);
  });

  it("exposes the account's public key and accepts a seed with surrounding whitespace", () => {
    const account = createAccount();
    const issuer = new NatsCredentialIssuer(`  ${seedOf(account)}\n`);
    expect(issuer.accountPublicKey).toBe(account.getPublicKey());
  });

  it.each([0, -5, 1.5, Number.NaN])("refuses a lifetime of %s seconds", async (expiresInS) => {
    const issuer = new NatsCredentialIssuer(seedOf(createAccount()));
    await expect(issuer.issue(AGENT, expiresInS)).rejects.toThrow(RangeError);
  });

  it("refuses agent subjects that reach other agents before signing anything", async () => {
    const issuer = new NatsCredentialIssuer(seedOf(createAccount()));
    await expect(issuer.issue({ ...AGENT, subscribedTopics: ["agents.*.control"] }, 60)).rejects.toThrow(
      NatsSubjectError,
    );
  });

  const accountSeed = seedOf(createAccount());
  it.each([
    ["an operator seed", seedOf(createOperator())],
    ["a user seed", seedOf(createUser())],
    ["an account public key", createAccount().getPublicKey()],
    ["an account seed with a broken checksum", `${accountSeed.slice(0, -2)}AA`],
    ["a truncated account seed", accountSeed.slice(0, 30)],
    ["an empty string", ""],
  ])("refuses %s without echoing it", (_kind, seed) => {
    let thrown: unknown;
    try {
      new NatsCredentialIssuer(seed);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(NatsAccountSeedError);
    const error = thrown as NatsAccountSeedError;
    expect(error.code).toBe("nats_account_seed_invalid");
    expect(error.cause).toBeUndefined();
    if (seed.length > 0) {
      // Not the seed, nor any stretch of it long enough to narrow a guess.
      for (let i = 0; i + 8 <= seed.length; i++) {
        expect(`${error.message}${error.stack}`).not.toContain(seed.slice(i, i + 8));
      }
    }
  });
});
