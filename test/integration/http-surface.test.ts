import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestSteward, type TestSteward } from "../helpers/steward.js";

let t: TestSteward;
beforeAll(async () => {
  t = await startTestSteward("postgres");
});
afterAll(async () => {
  await t?.close();
});

describe("health", () => {
  it("answers liveness and readiness without a credential", async () => {
    const health = await t.request({ method: "GET", url: "/health", key: null });
    expect(health.statusCode).toBe(200);
    expect(health.json()).toEqual({ status: "ok" });
    const ready = await t.request({ method: "GET", url: "/ready", key: null });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toEqual({ status: "ready", checks: { database: "ok" }, database: "postgres" });
  });

  it("reports not ready with 503 when the database is gone", async () => {
    const broken = await startTestSteward("postgres");
    await broken.steward.database.pool.end();
    const ready = await broken.request({ method: "GET", url: "/ready", key: null });
    expect(ready.statusCode).toBe(503);
    expect(ready.json().error).toMatchObject({
      code: "SERVICE_UNAVAILABLE",
      details: { checks: { database: "failed" } },
    });
    await broken.steward.server.close();
  });
});

describe("OpenAPI", () => {
  it("describes every API route in OpenAPI 3.1", async () => {
    const response = await t.request({ method: "GET", url: "/openapi.json", key: null });
    expect(response.statusCode).toBe(200);
    const document = response.json();
    expect(document.openapi).toBe("3.1.0");
    expect(Object.keys(document.paths)).toEqual(
      expect.arrayContaining([
        "/api/v1/external-agents",
        "/api/v1/external-agents/{id}",
        "/api/v1/api-keys",
        "/api/v1/api-keys/{id}",
        "/api/v1/orgs",
        "/health",
        "/ready",
      ]),
    );
    const create = document.paths["/api/v1/external-agents"].post;
    expect(create.requestBody.content["application/json"].schema.required).toEqual(
      expect.arrayContaining(["name", "platform", "webhook_url"]),
    );
    expect(Object.keys(create.responses)).toEqual(
      expect.arrayContaining(["201", "400", "401", "403", "409"]),
    );
    expect(document.components.securitySchemes).toHaveProperty("bearerAuth");
  });

  it("serves Swagger UI at /docs", async () => {
    const response = await t.request({ method: "GET", url: "/docs/", key: null });
    expect(response.statusCode).toBe(200);
    expect(response.headers["content-type"]).toContain("text/html");
  });
});

describe("request bodies", () => {
  it.each(["text/plain", "application/xml", "application/x-www-form-urlencoded"])(
    "refuses a body sent as %s with 415",
    async (contentType) => {
      const response = await t.request({
        method: "POST",
        url: "/api/v1/api-keys",
        headers: { "content-type": contentType },
        payload: JSON.stringify({ name: "ci", role: "developer" }),
      });
      expect(response.statusCode, response.body).toBe(415);
      expect(response.json().error.code).toBe("UNSUPPORTED_MEDIA_TYPE");
    },
  );
});
