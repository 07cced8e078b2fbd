import { Link } from "react-router";
import type { JobStreamEvent } from "./job-types";

const text = (value: unknown) => (value === undefined || value === null ? "" : String(value));

/** One step of the job's run in words. */
export function TimelineItem({ event }: { event: JobStreamEvent }) {
  const { data } = event;
  const node = <code>{text(data.node)}</code>;
  switch (event.event_type) {
    case "node_start":
      return <>Node {node} started</>;
    case "node_end":
      return (
        <>
          Node {node} finished
          <details>
            <summary>Output</summary>
            <pre>{JSON.stringify(data.output, null, 2)}</pre>
          </details>
        </>
      );
    case "agent_call":
      return (
        <>
          Node {node} called agent <Link to={`/agents/${text(data.agent_id)}`}>{text(data.agent_id)}</Link>
        </>
      );
    case "agent_result":
      return (
        <>
          The agent answered {text(data.status)} (
          <Link to={`/lineage/${text(data.invocation_id)}`}>{text(data.invocation_id)}</Link>)
        </>
      );
    case "http_call":
      return (
        <>
          Node {node} sent {text(data.method)} <code>{text(data.url)}</code>
        </>
      );
    case "error":
      return (
        <span className="job-error-text">
          Error: {text(data.message)} ({text(data.type)})
        </span>
      );
    case "retrying":
      return <>This attempt failed; Steward will run the job again from its last checkpoint</>;
    case "end":
      return <strong>End of stream</strong>;
    default:
      return (
        <>
          {event.event_type} <code>{JSON.stringify(data)}</code>
        </>
      );
  }
}
