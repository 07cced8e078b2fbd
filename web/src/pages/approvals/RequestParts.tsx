import type { Approval } from "./approval-types";

/** Why Steward held the call. */
export function ReasonList({ reasons }: { reasons: string[] }) {
  return (
    <ul className="approval-reasons">
      {reasons.map((reason) => (
        <li key={reason}>{reason}</li>
      ))}
    </ul>
  );
}

/** The call's input as Steward summarised it, secrets and sensitive data already masked. */
export function SummaryText({ summary }: { summary: string }) {
  return <pre className="approval-summary">{summary}</pre>;
}

/** Who asked: the external user when the caller named one, and the credential it came through. */
export function Requester({ requester }: { requester: Approval["requester"] }) {
  if (!requester.external_user) return <code>{requester.principal_id}</code>;
  return (
    <>
      {requester.external_user} <span className="approval-muted">via</span>{" "}
      <code>{requester.principal_id}</code>
    </>
  );
}
