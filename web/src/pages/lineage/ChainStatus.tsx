import { Link } from "react-router";
import { useResource } from "../../api/hooks";
import { ResourceView } from "../../components/States";
import type { ChainVerification } from "./lineage-types";

function Verdict({ verification }: { verification: ChainVerification }) {
  const broken = verification.first_broken;
  if (verification.valid || !broken) {
    return (
      <p className="chain-verdict" role="status">
        <span className="badge badge-good">Chain intact</span> All {verification.checked} records in the hash
        chain verify.
      </p>
    );
  }
  return (
    <div className="chain-verdict" role="status">
      <p>
        <span className="badge badge-bad">Chain broken</span> {verification.checked} records verify; record{" "}
        {broken.chain_seq} does not: {broken.reason}.
      </p>
      {broken.invocation_id && (
        <p>
          First broken record: <Link to={`/lineage/${broken.invocation_id}`}>{broken.invocation_id}</Link>
        </p>
      )}
    </div>
  );
}

/** Whether anyone has changed or deleted records (GET /lineage/verify), with a way to check again. */
export function ChainStatus() {
  const verification = useResource<ChainVerification>("/lineage/verify");
  return (
    <section className="panel" aria-labelledby="chain-heading">
      <div className="chain-header">
        <h2 id="chain-heading">Hash chain</h2>
        <button
          type="button"
          className="secondary"
          onClick={verification.reload}
          disabled={verification.loading}
        >
          {verification.loading ? "Verifying…" : "Verify again"}
        </button>
      </div>
      <ResourceView resource={verification}>{(data) => <Verdict verification={data} />}</ResourceView>
    </section>
  );
}
