import { Link } from "react-router";
import { ApiError, errorMessage } from "../../api/client";
import { StatusBadge } from "../../components/StatusBadge";
import type { InvokeSuccess, PendingApproval } from "./agent-types";
import { formatCost, formatDateTime, formatDuration } from "./format";

export type InvokeOutcome = { success: InvokeSuccess } | { pending: PendingApproval } | { failure: unknown };

/** The answer to one invoke: the output, or why it waits, or why it was refused. */
export function InvocationResult({ outcome, nested = false }: { outcome: InvokeOutcome; nested?: boolean }) {
  const Heading = nested ? "h4" : "h3";
  return (
    <section className="agent-invoke-result" aria-label="Invocation result" aria-live="polite">
      <Heading>Result</Heading>
      {"success" in outcome && <Success result={outcome.success} nested={nested} />}
      {"pending" in outcome && <Pending pending={outcome.pending} />}
      {"failure" in outcome && <Failure failure={outcome.failure} />}
    </section>
  );
}

function TraceLink({ invocationId }: { invocationId: string }) {
  return (
    <Link to={`/lineage/${invocationId}`}>
      <code>{invocationId}</code>
    </Link>
  );
}

function Success({ result, nested }: { result: InvokeSuccess; nested: boolean }) {
  const Heading = nested ? "h5" : "h4";
  return (
    <>
      <dl className="facts">
        <dt>Status</dt>
        <dd>
          <StatusBadge status={result.status} />
        </dd>
        <dt>Invocation</dt>
        <dd>
          <TraceLink invocationId={result.invocation_id} />
        </dd>
        <dt>Cost</dt>
        <dd>{formatCost(result.cost_usd)}</dd>
        <dt>Duration</dt>
        <dd>{formatDuration(result.duration_ms)}</dd>
      </dl>
      <Heading>Output</Heading>
      <pre className="agent-output">
        {typeof result.output === "string" ? result.output : JSON.stringify(result.output, null, 2)}
      </pre>
    </>
  );
}

function Pending({ pending }: { pending: PendingApproval }) {
  return (
    <dl className="facts">
      <dt>Status</dt>
      <dd>
        <StatusBadge status={pending.status} />
      </dd>
      <dt>Invocation</dt>
      <dd>
        <TraceLink invocationId={pending.invocation_id} />
      </dd>
      <dt>Why</dt>
      <dd>{pending.reasons.join("; ") || "An approval rule applies."}</dd>
      {pending.approval_id && (
        <>
          <dt>Approval</dt>
          <dd>
            <Link to={`/approvals/${pending.approval_id}`}>{pending.approval_id}</Link>
          </dd>
        </>
      )}
      {pending.expires_at && (
        <>
          <dt>Expires</dt>
          <dd>{formatDateTime(pending.expires_at)}</dd>
        </>
      )}
    </dl>
  );
}

function Failure({ failure }: { failure: unknown }) {
  // Refusals by governance and upstream failures are recorded: their answer names the invocation.
  const invocationId =
    failure instanceof ApiError && typeof failure.details.invocation_id === "string"
      ? failure.details.invocation_id
      : undefined;
  return (
    <div role="alert" className="agent-invoke-failure">
      <p>
        {failure instanceof ApiError && <StatusBadge status={failure.code.toLowerCase()} />}{" "}
        {errorMessage(failure)}
      </p>
      {invocationId && (
        <p>
          Invocation <TraceLink invocationId={invocationId} />
        </p>
      )}
    </div>
  );
}
