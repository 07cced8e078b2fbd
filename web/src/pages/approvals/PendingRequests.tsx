import { useState } from "react";
import type { Page } from "../../api/client";
import { useInterval, useResource } from "../../api/hooks";
import { Pagination } from "../../components/Pagination";
import { ResourceView } from "../../components/States";
import type { Approval, DecisionAnswer } from "./approval-types";
import { DecisionRefusal } from "./DecisionNotice";
import { PendingRequestCard } from "./PendingRequestCard";
import { useAgentNames } from "./useAgentNames";

const PAGE_SIZE = 10;
/** New requests arrive while the inbox is open. */
const REFRESH_MS = 15_000;

/** The requests waiting for a decision, newest first, each with its decision form. */
export function PendingRequests({ onDecided }: { onDecided: (answer: DecisionAnswer) => void }) {
  const [page, setPage] = useState(1);
  const [refusal, setRefusal] = useState<string>();
  const pending = useResource<Page<Approval>>("/approvals", { status: "pending", page, limit: PAGE_SIZE });
  const names = useAgentNames(pending.data?.items.map((item) => item.external_agent_id) ?? []);
  useInterval(pending.reload, REFRESH_MS);

  const decided = (answer: DecisionAnswer) => {
    // The last card of a later page went away: step back rather than show an empty page.
    if (page > 1 && pending.data?.items.length === 1) setPage(page - 1);
    else pending.reload();
    setRefusal(undefined);
    onDecided(answer);
  };
  const stale = (message: string) => {
    setRefusal(message);
    pending.reload();
  };

  return (
    <section aria-labelledby="pending-heading">
      <h2 id="pending-heading">
        Waiting for a decision
        {pending.data && <span className="approval-count"> ({pending.data.total})</span>}
      </h2>
      <DecisionRefusal refusal={refusal} />
      <ResourceView
        resource={pending}
        isEmpty={(data) => data.total === 0}
        empty="No requests are waiting for a decision."
      >
        {(data) => (
          <>
            <ul className="approval-cards">
              {data.items.map((approval) => (
                <li key={approval.id}>
                  <PendingRequestCard
                    approval={approval}
                    agentName={names[approval.external_agent_id] ?? approval.external_agent_id}
                    onDecided={decided}
                    onStale={stale}
                  />
                </li>
              ))}
            </ul>
            <Pagination page={data} onPage={setPage} label="Pending requests" />
          </>
        )}
      </ResourceView>
    </section>
  );
}
