import type { AttemptRecord } from "../../src/delivery/attempt-recorder.js";

/** An attempt the platform took with 200. */
export const DELIVERED: AttemptRecord = {
  startedAt: new Date(),
  durationMs: 3,
  statusCode: 200,
  outcome: "delivered",
  error: null,
  endpointFailure: false,
};
