import type { Db } from "../db/database.js";
import type { DeliveryRow } from "../db/schema.js";
import { answerFor } from "../invocation/invocation-response.js";
import type { DeliveryTarget, PreparedDelivery } from "./delivery-target.js";
import { outcomeOf } from "./http-outcome.js";
import { invocationOf } from "./platform-target.js";

/** The callback URL a requester gave at invoke, if it gave one. */
export function callbackUrlOf(requestBody: unknown): string | undefined {
  const url = (requestBody as { callback_url?: unknown } | null)?.callback_url;
  return typeof url === "string" ? url : undefined;
}

/**
 * Tells the requester's system how a call that waited for approval ended: the answer
 * the invoke would have given (the result, or the error envelope without a request id),
 * POSTed to the `callback_url` given at invoke.
 */
export class CallbackDeliveryTarget implements DeliveryTarget {
  constructor(private readonly db: Db) {}

  async prepare(delivery: DeliveryRow): Promise<PreparedDelivery | { skip: string }> {
    const invocation = await invocationOf(this.db, delivery);
    const url = invocation ? callbackUrlOf(invocation.requestBody) : undefined;
    if (!invocation || !url) return { skip: "the invocation or its callback URL no longer exists" };
    const answer = answerFor(invocation);
    const body =
      "error" in answer
        ? {
            error: {
              code: answer.error.code,
              message: answer.error.message,
              details: answer.error.details ?? {},
            },
          }
        : answer.body;
    return {
      payload: {
        url,
        headers: { "content-type": "application/json", "x-steward-invocation-id": invocation.id },
        body: JSON.stringify(body),
      },
      deliver: async (payload, send, timeoutMs) => outcomeOf(await send(payload, timeoutMs)),
    };
  }
}
