import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { PlatformConfigError } from "../../../src/delivery/adapters/adapter.js";
import { customHttpAdapter } from "../../../src/delivery/adapters/custom-http.adapter.js";
import { adapterFor, CONFIGS, CONTEXT, fakeSender, NOTICES, notice, parsedBody } from "./adapter-fixtures.js";

const RAW_SECRET = "canary-raw-hmac-secret";
const WHSEC_SECRET = `whsec_${Buffer.from("canary-whsec-key-bytes-0123456789").toString("base64")}`;

describe("custom_http adapter", () => {
  it("sends the invocation result as a Standard Webhooks event with snake_case fields", () => {
    expect(parsedBody(adapterFor("custom_http").format(NOTICES.success))).toEqual({
      type: "external_agent.invocation.completed",
      timestamp: "2026-03-01T12:00:00.000Z",
      data: {
        invocation_id: "inv_01jc7s3bz8m0v4kx2g6wq9hfre",
        agent_id: "agt_01jc7rzx4b1n5c8d2e6f0g9h3j",
        agent_name: "support-bot",
        status: "success",
        output: { answer: "Reset the router", confidence: 0.93 },
        error: null,
        duration_ms: 1234,
        cost_usd: 0.0125,
        trace_id: "4bf92f3577b34da6a3ce929d0e0e4736",
        external_user: "ada@example.com",
        created_at: "2026-03-01T11:59:58.766Z",
        completed_at: "2026-03-01T12:00:00.000Z",
        dashboard_url: NOTICES.success.dashboardUrl,
      },
    });
  });

  it("sends a managed agent's alert as a managed_agent.alert event, not as a completed invocation", () => {
    const alert = notice({ status: "alert", invocationId: "alr_01jc7s3bz8m0v4kx2g6wq9hfre" });
    const body = parsedBody(adapterFor("custom_http").format(alert));
    expect(body).toMatchObject({ type: "managed_agent.alert", data: { status: "alert" } });
  });

  it("sends the configured headers, with the invocation id as webhook-id; Steward's own headers win", () => {
    const adapter = customHttpAdapter.create(
      {
        ...CONFIGS.custom_http,
        headers: { "X-Source": "steward", "Content-Type": "text/plain", "Webhook-Id": "x" },
      },
      CONTEXT,
    );
    expect(adapter.format(NOTICES.failure).headers).toEqual({
      "x-source": "steward",
      "content-type": "application/json",
      "webhook-id": NOTICES.failure.invocationId,
    });
  });

  it("is not signed when the agent has no hmac secret", async () => {
    const adapter = adapterFor("custom_http");
    const { send, sent } = fakeSender(() => ({ statusCode: 204 }));
    await adapter.deliver(adapter.format(NOTICES.success), send, 1000);
    expect(Object.keys(sent[0]?.payload.headers ?? {})).not.toContain("webhook-signature");
  });

  it.each([
    [
      "a raw secret, as its UTF-8 bytes",
      RAW_SECRET,
      new Webhook(Buffer.from(RAW_SECRET, "utf8"), { format: "raw" }),
    ],
    ["a whsec_ secret", WHSEC_SECRET, new Webhook(WHSEC_SECRET)],
  ])("signs with %s so a Standard Webhooks library verifies it", async (_, signingSecret, verifier) => {
    const adapter = adapterFor("custom_http", { signingSecret, now: () => new Date() });
    const payload = adapter.format(NOTICES.success);
    const { send, sent } = fakeSender(() => ({ statusCode: 200 }));
    expect((await adapter.deliver(payload, send, 1000)).delivered).toBe(true);
    const headers = sent[0]?.payload.headers ?? {};
    expect(headers["webhook-id"]).toBe(NOTICES.success.invocationId);
    expect(headers.authorization).toBe("Bearer canaryCustomHeader0123456789");
    expect(verifier.verify(sent[0]?.payload.body ?? "", headers)).toEqual(parsedBody(payload));
  });

  it("signs every attempt afresh at its own time, over the same id and bytes", async () => {
    let now = new Date("2026-03-01T12:00:00Z");
    const adapter = adapterFor("custom_http", { signingSecret: RAW_SECRET, now: () => now });
    const payload = adapter.format(NOTICES.success);
    const { send, sent } = fakeSender(() => ({ statusCode: 503 }));
    await adapter.deliver(payload, send, 1000);
    now = new Date("2026-03-01T12:10:00Z");
    await adapter.deliver(payload, send, 1000);
    const [first, second] = sent.map((request) => request.payload);
    expect(first?.headers["webhook-timestamp"]).toBe(String(Date.parse("2026-03-01T12:00:00Z") / 1000));
    expect(second?.headers["webhook-timestamp"]).toBe(String(Date.parse("2026-03-01T12:10:00Z") / 1000));
    expect(second?.headers["webhook-signature"]).not.toBe(first?.headers["webhook-signature"]);
    expect(second?.headers["webhook-id"]).toBe(first?.headers["webhook-id"]);
    expect(second?.body).toBe(first?.body);
  });

  it("fails for good, sending nothing, with a broken whsec_ secret", async () => {
    const adapter = adapterFor("custom_http", { signingSecret: "whsec_canary!!not-base64" });
    const { send, sent } = fakeSender(() => ({ statusCode: 200 }));
    const outcome = await adapter.deliver(adapter.format(NOTICES.success), send, 1000);
    expect(outcome).toEqual({
      delivered: false,
      retryable: false,
      error: "auth_config.secret is not a valid whsec_ secret",
    });
    expect(sent).toEqual([]);
  });

  it("refuses a configured header that frames the request", () => {
    const config = { ...CONFIGS.custom_http, headers: { "Content-Length": "5" } };
    expect(() => customHttpAdapter.create(config, CONTEXT)).toThrow(
      new PlatformConfigError("platform_config.headers.Content-Length", "is set by Steward itself"),
    );
  });

  it("has no destination without a webhook URL, and refuses to be created for one", () => {
    expect(customHttpAdapter.deliversTo({})).toBe(false);
    expect(customHttpAdapter.deliversTo({ headers: { "X-A": "b" } })).toBe(false);
    expect(() => customHttpAdapter.create({}, CONTEXT)).toThrow(PlatformConfigError);
  });
});
