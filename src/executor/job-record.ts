/** A job as it is first recorded, by whichever route brought it. */
export interface NewJob {
  id: string;
  organizationId: string;
  traceId: string;
  name: string;
  definition: Record<string, unknown>;
  input: unknown;
  source: "http" | "jetstream" | "cloudevent";
  createdBy: string | null;
}

/** Why a job failed, as stored and announced. */
export interface JobError {
  message: string;
  type: string;
  stack_trace?: string;
}
