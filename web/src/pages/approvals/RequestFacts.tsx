import { Link } from "react-router";
import { DateTime } from "../../components/DateTime";
import { type Approval, type ApprovalDetail, approvalsSoFar } from "./approval-types";
import { ReasonList, Requester, SummaryText } from "./RequestParts";

/**
 * Everything about a request an approver weighs. The inbox `card` names the agent in its
 * heading and shows the summary among the facts; the request `page` shows the summary in a
 * panel of its own and adds the agent, the decisions so far, who may decide and the call.
 */
export function RequestFacts(
  props: { view: "card"; approval: Approval } | { view: "page"; approval: ApprovalDetail; agentName: string },
) {
  const { approval } = props;
  return (
    <dl className="facts">
      {props.view === "page" && (
        <>
          <dt>Agent</dt>
          <dd>
            <Link to={`/agents/${approval.external_agent_id}`}>{props.agentName}</Link>
          </dd>
        </>
      )}
      <dt>Requested by</dt>
      <dd>
        <Requester requester={approval.requester} />
      </dd>
      <dt>Held because</dt>
      <dd>
        <ReasonList reasons={approval.reasons} />
      </dd>
      {props.view === "card" ? (
        <>
          <dt>Summary</dt>
          <dd>
            <SummaryText summary={approval.summary} />
          </dd>
        </>
      ) : (
        <>
          <dt>Requested</dt>
          <dd>
            <DateTime value={approval.created_at} />
          </dd>
        </>
      )}
      <dt>Expires</dt>
      <dd>
        <DateTime value={approval.expires_at} />
      </dd>
      {props.view === "card" ? (
        <>
          <dt>Approvals needed</dt>
          <dd>{approval.required_approvals}</dd>
        </>
      ) : (
        <DecisionFacts approval={props.approval} />
      )}
    </dl>
  );
}

/** The request page's rows on its progress: escalation, approvals so far, who may decide, the call. */
function DecisionFacts({ approval }: { approval: ApprovalDetail }) {
  const approvers = [...approval.approver_roles.map((role) => `${role} (role)`), ...approval.approver_users];
  return (
    <>
      {approval.escalated_at && (
        <>
          <dt>Escalated</dt>
          <dd>
            <DateTime value={approval.escalated_at} />
          </dd>
        </>
      )}
      <dt>Approvals</dt>
      <dd>
        {approvalsSoFar(approval.decisions)} of {approval.required_approvals} required
      </dd>
      <dt>Who may decide</dt>
      <dd>{approvers.length > 0 ? approvers.join(", ") : "Anyone who may approve"}</dd>
      <dt>Invocation</dt>
      <dd>
        <Link to={`/lineage/${approval.invocation_id}`}>{approval.invocation_id}</Link>
      </dd>
    </>
  );
}
