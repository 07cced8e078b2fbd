import type { ApprovalRow } from "../db/schema.js";
import type { EmailMessage } from "./mailer.js";

/**
 * The e-mail approvers get when a call waits for them, and as a reminder. It holds the
 * redacted summary only, never the input, and links to the request in the dashboard.
 */
export function approvalEmail(approval: ApprovalRow, to: string[], publicUrl: string): EmailMessage {
  const reminder = approval.notificationsSent > 0;
  const link = `${publicUrl}/approvals/${approval.id}`;
  return {
    to,
    subject: `${reminder ? "Reminder: " : ""}approval needed for a call to ${approval.externalAgentId}`,
    text: [
      `A call to agent ${approval.externalAgentId} waits for your approval.`,
      "",
      `Why: ${approval.reasons.join("; ")}`,
      `Requested by: ${approval.requesterExternalUser ?? approval.requesterPrincipalId}`,
      `Request: ${approval.summary}`,
      `Expires: ${approval.expiresAt.toISOString()}`,
      "",
      `Approve or reject: ${link}`,
      `Or through the API: POST /api/v1/approvals/${approval.id}/approve (or /reject with a reason).`,
    ].join("\n"),
  };
}
