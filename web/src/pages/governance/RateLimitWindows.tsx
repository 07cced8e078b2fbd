import type { GovernanceStatus } from "../../api/types";
import { Empty } from "../../components/States";

const WINDOW_NAMES: Record<string, string> = { minute: "Per minute", hour: "Per hour", day: "Per day" };

function formatWait(seconds: number): string {
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3600) return `${Math.ceil(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

/** How full each of the agent's sliding windows is now. */
export function RateLimitWindows({ status }: { status: GovernanceStatus }) {
  const { available, windows } = status.rate_limits;
  if (!available) {
    return (
      <p className="state state-error" role="alert">
        The rate-limit store could not be read, so window usage is unknown.
      </p>
    );
  }
  if (windows.length === 0) return <Empty>This agent has no rate limits.</Empty>;
  return (
    <div className="table-wrap">
      <table>
        <thead>
          <tr>
            <th scope="col">Window</th>
            <th scope="col">Usage</th>
            <th scope="col">Used</th>
            <th scope="col">Remaining</th>
            <th scope="col">Frees up in</th>
          </tr>
        </thead>
        <tbody>
          {windows.map((window) => {
            const name = WINDOW_NAMES[window.window] ?? window.window;
            return (
              <tr key={window.window}>
                <th scope="row">{name}</th>
                <td>
                  <meter
                    className="window-meter"
                    aria-label={`${name} window`}
                    min={0}
                    max={window.limit}
                    high={window.limit * 0.8}
                    value={window.used}
                  />
                </td>
                <td>
                  {window.used} of {window.limit}
                </td>
                <td>{window.remaining}</td>
                <td>{window.used === 0 ? "—" : formatWait(window.reset_seconds)}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

/** What else decides the agent's next call: degradation, approvals waiting, policies. */
export function GovernanceFacts({ status }: { status: GovernanceStatus }) {
  const degraded = [
    status.degraded.budget && "budget past its degradation threshold",
    status.degraded.rate_limiter && "rate limiter unavailable",
  ].filter(Boolean);
  return (
    <dl className="facts governance-facts">
      <dt>Degraded</dt>
      <dd>{degraded.length > 0 ? degraded.join("; ") : "no"}</dd>
      <dt>Pending approvals</dt>
      <dd>{status.pending_approvals}</dd>
      <dt>Policies</dt>
      <dd>
        {status.policies.applicable.length} enabled, combined by{" "}
        {status.policies.combining.replaceAll("_", " ")}
      </dd>
    </dl>
  );
}
