import Type from "typebox";
import { HEADER_NAME_PATTERN } from "../../agents/config-schema.js";
import { configuredHeaderProblems } from "../../http/outbound-headers.js";
import { AuthConfigError, standardWebhookHeaders } from "../../invocation/outbound-auth.js";
import { type AdapterDefinition, type InvocationNotice, PlatformConfigError } from "./adapter.js";
import { readConfig, STRICT, secret } from "./config-fields.js";
import { readAnswer } from "./platform-answer.js";

/**
 * Any HTTP endpoint: the invocation result as JSON, in the Standard Webhooks shape.
 * When the agent authenticates with hmac, its secret signs every attempt afresh
 * (receivers refuse timestamps older than five minutes, and a retry can be later).
 */

const configSpec = {
  schema: Type.Object(
    {
      webhook_url: Type.Optional(secret("URL results are POSTed to")),
      headers: Type.Optional(
        Type.Record(Type.String({ pattern: HEADER_NAME_PATTERN }), secret("Header value"), {
          additionalProperties: false,
          maxProperties: 50,
          description: "Headers sent with every delivery; values are stored as secrets",
        }),
      ),
    },
    STRICT,
  ),
  secretPaths: ["webhook_url", "headers.*"],
  urlFields: ["webhook_url"],
  refine: (config: Record<string, unknown>) =>
    configuredHeaderProblems((config.headers ?? {}) as Record<string, string>, "headers"),
};

export const CUSTOM_HTTP_EVENT = "external_agent.invocation.completed";
/** A managed agent's alert routed to this endpoint: the same name as its webhook event. */
export const CUSTOM_HTTP_ALERT_EVENT = "managed_agent.alert";

/** The body: stable across retries, so its bytes (and the receiver's dedup by webhook-id) are too. */
export function customHttpEvent(notice: InvocationNotice) {
  return {
    // An alert is not a completed invocation: a receiver filtering on the type must tell them apart.
    type: notice.status === "alert" ? CUSTOM_HTTP_ALERT_EVENT : CUSTOM_HTTP_EVENT,
    timestamp: notice.completedAt.toISOString(),
    data: {
      invocation_id: notice.invocationId,
      agent_id: notice.agentId,
      agent_name: notice.agentName,
      status: notice.status,
      output: notice.output ?? null,
      error: notice.error,
      duration_ms: notice.durationMs,
      cost_usd: notice.costUsd,
      trace_id: notice.traceId,
      external_user: notice.externalUser,
      created_at: notice.createdAt.toISOString(),
      completed_at: notice.completedAt.toISOString(),
      dashboard_url: notice.dashboardUrl,
    },
  };
}

export const customHttpAdapter: AdapterDefinition = {
  configSpec,
  deliversTo: (config) => typeof config.webhook_url === "string",
  create(rawConfig, context) {
    const { webhook_url: url, headers = {} } = readConfig(configSpec, rawConfig);
    if (url === undefined)
      throw new PlatformConfigError("platform_config.webhook_url", "is not set: nothing to deliver to");
    // readConfig has refused framing headers and values HTTP cannot carry.
    const extraHeaders = Object.fromEntries(
      Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value]),
    );
    const { signingSecret } = context;
    const now = context.now ?? (() => new Date());
    const secrets = [url, ...Object.values(headers), ...(signingSecret === undefined ? [] : [signingSecret])];
    return {
      format: (notice) => ({
        url,
        // Steward's own headers win over configured ones of the same name.
        headers: { ...extraHeaders, "content-type": "application/json", "webhook-id": notice.invocationId },
        body: JSON.stringify(customHttpEvent(notice)),
      }),
      async deliver(payload, send, timeoutMs) {
        let headers = payload.headers;
        if (signingSecret !== undefined) {
          try {
            const messageId = payload.headers["webhook-id"] ?? "";
            headers = {
              ...headers,
              ...standardWebhookHeaders(signingSecret, messageId, now(), payload.body),
            };
          } catch (error) {
            if (error instanceof AuthConfigError)
              return { delivered: false, retryable: false, error: error.message };
            throw error;
          }
        }
        return readAnswer(await send({ ...payload, headers }, timeoutMs), {
          platform: "The endpoint",
          secrets,
          now,
        });
      },
    };
  },
};
