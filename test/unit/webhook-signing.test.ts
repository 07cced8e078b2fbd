import { Webhook, WebhookVerificationError } from "standardwebhooks";
import { describe, expect, expectTypeOf, it } from "vitest";
import { SecretBox, SecretDecryptionError } from "../../src/crypto/secret-box.js";
import type { OutboxEvent } from "../../src/delivery/delivery-target.js";
import type { WebhookEventType } from "../../src/delivery/webhooks/webhook-events.js";
import {
  maskedWebhookSecret,
  newWebhookSecret,
  previousSecretActive,
  sealWebhookSecret,
  signingSecrets,
} from "../../src/delivery/webhooks/webhook-secret.js";
import { standardWebhookHeaders } from "../../src/delivery/webhooks/webhook-signature.js";

const box = new SecretBox(Buffer.alloc(32, 0x3c));
const SUBSCRIPTION = "whk_01jc0000000000000000000000";
const DELIVERY = "dlv_01jc0000000000000000000000";
const BODY = JSON.stringify({
  type: "external_agent.invocation.completed",
  timestamp: "2025-01-01T00:00:00.000Z",
  data: { invocation_id: "inv_1", status: "success" },
});

/** A stored subscription mid-rotation: `current` signs, `previous` until `until`. */
function rotated(current: string, previous: string, until: number) {
  return {
    id: SUBSCRIPTION,
    secret: { ...sealWebhookSecret(box, SUBSCRIPTION, current) },
    previousSecret: { ...sealWebhookSecret(box, SUBSCRIPTION, previous) },
    previousSecretUntil: new Date(until),
  };
}

/** Signs BODY at `now` with the secrets the subscription has then. */
function sign(row: ReturnType<typeof rotated>, now: number) {
  return standardWebhookHeaders(DELIVERY, new Date(now), BODY, signingSecrets(box, row, now));
}

describe("standardWebhookHeaders", () => {
  it("produces headers the standardwebhooks package verifies", () => {
    const secret = newWebhookSecret();
    const now = Date.now();
    const headers = standardWebhookHeaders(DELIVERY, new Date(now), BODY, [secret]);
    expect(headers).toEqual({
      "webhook-id": DELIVERY,
      "webhook-timestamp": String(Math.floor(now / 1000)),
      "webhook-signature": expect.stringMatching(/^v1,[A-Za-z0-9+/]{43}=$/),
    });
    expect(new Webhook(secret).verify(BODY, headers)).toEqual(JSON.parse(BODY));
  });

  it("refuses a changed body, id or timestamp", () => {
    const secret = newWebhookSecret();
    const headers = standardWebhookHeaders(DELIVERY, new Date(), BODY, [secret]);
    const webhook = new Webhook(secret);
    expect(() => webhook.verify(`${BODY} `, headers)).toThrow(WebhookVerificationError);
    expect(() => webhook.verify(BODY, { ...headers, "webhook-id": "dlv_other" })).toThrow(
      WebhookVerificationError,
    );
    const earlier = String(Number(headers["webhook-timestamp"]) - 1);
    expect(() => webhook.verify(BODY, { ...headers, "webhook-timestamp": earlier })).toThrow(
      WebhookVerificationError,
    );
  });
});

describe("rotation overlap", () => {
  const now = Date.now();
  const fresh = newWebhookSecret();
  const old = newWebhookSecret();

  it("signs with the new and the previous secret while the overlap lasts", () => {
    const row = rotated(fresh, old, now + 3600_000);
    const headers = sign(row, now);
    expect(headers["webhook-signature"].split(" ")).toHaveLength(2);
    expect(new Webhook(fresh).verify(BODY, headers)).toEqual(JSON.parse(BODY));
    expect(new Webhook(old).verify(BODY, headers)).toEqual(JSON.parse(BODY));
    expect(() => new Webhook(newWebhookSecret()).verify(BODY, headers)).toThrow(WebhookVerificationError);
  });

  it("signs with the new secret only once the overlap has ended", () => {
    const row = rotated(fresh, old, now);
    const headers = sign(row, now);
    expect(headers["webhook-signature"].split(" ")).toHaveLength(1);
    expect(new Webhook(fresh).verify(BODY, headers)).toEqual(JSON.parse(BODY));
    expect(() => new Webhook(old).verify(BODY, headers)).toThrow(WebhookVerificationError);
  });

  it("ends the overlap at previous_secret_until exactly", () => {
    const row = rotated(fresh, old, now);
    expect(previousSecretActive(row, now - 1)).toBe(true);
    expect(previousSecretActive(row, now)).toBe(false);
    expect(previousSecretActive({ previousSecret: null, previousSecretUntil: null }, now)).toBe(false);
  });
});

describe("webhook secrets", () => {
  it("are whsec_ secrets carrying 32 random bytes", () => {
    const secrets = new Set(Array.from({ length: 100 }, newWebhookSecret));
    expect(secrets.size).toBe(100);
    for (const secret of secrets) {
      expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
      expect(Buffer.from(secret.slice("whsec_".length), "base64")).toHaveLength(32);
    }
  });

  it("are sealed without the plaintext and shown masked by their last four characters", () => {
    const secret = newWebhookSecret();
    const sealed = sealWebhookSecret(box, SUBSCRIPTION, secret);
    expect(JSON.stringify(sealed)).not.toContain(secret.slice("whsec_".length, -4));
    expect(maskedWebhookSecret({ secret: { ...sealed } })).toBe(`****${secret.slice(-4)}`);
  });

  it("open only on the subscription they were sealed for", () => {
    const secret = newWebhookSecret();
    const row = {
      id: "whk_01jc0000000000000000000001",
      secret: { ...sealWebhookSecret(box, SUBSCRIPTION, secret) },
      previousSecret: null,
      previousSecretUntil: null,
    };
    expect(() => signingSecrets(box, row, Date.now())).toThrow(SecretDecryptionError);
    expect(signingSecrets(box, { ...row, id: SUBSCRIPTION }, Date.now())).toEqual([secret]);
  });

  it("refuse a stored value that is not sealed", () => {
    const row = {
      id: SUBSCRIPTION,
      secret: { plain: "whsec_x" },
      previousSecret: null,
      previousSecretUntil: null,
    };
    expect(() => signingSecrets(box, row, Date.now())).toThrow(SecretDecryptionError);
    expect(() => maskedWebhookSecret(row)).toThrow(SecretDecryptionError);
  });
});

describe("event types", () => {
  it("are exactly the outbox's", () => {
    expectTypeOf<WebhookEventType>().toEqualTypeOf<OutboxEvent["type"]>();
  });
});
