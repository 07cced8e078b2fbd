import { Link } from "react-router";
import { useResource } from "../../api/hooks";
import { DateTime } from "../../components/DateTime";
import { ResourceView } from "../../components/States";
import { StatusBadge } from "../../components/StatusBadge";

/** The fields of GET /api/v1/invocations/{id} this view reads. */
interface Invocation {
  invocation_id: string;
  status: string;
  error: string | null;
  duration_ms: number | null;
  completed_at: string | null;
}

/** How the held call ended after the decision, read from its lineage record. */
export function InvocationResult({ invocationId }: { invocationId: string }) {
  const invocation = useResource<Invocation>(`/invocations/${invocationId}`);
  return (
    <ResourceView resource={invocation}>
      {(call) => (
        <dl className="facts">
          <dt>The call</dt>
          <dd>
            <StatusBadge status={call.status} />
          </dd>
          {call.completed_at && (
            <>
              <dt>Finished</dt>
              <dd>
                <DateTime value={call.completed_at} />
                {call.duration_ms !== null && ` (${call.duration_ms} ms)`}
              </dd>
            </>
          )}
          {call.error && (
            <>
              <dt>Error</dt>
              <dd>{call.error}</dd>
            </>
          )}
          <dt>Trace</dt>
          <dd>
            <Link to={`/lineage/${call.invocation_id}`}>Open the call's trace</Link>
          </dd>
        </dl>
      )}
    </ResourceView>
  );
}
