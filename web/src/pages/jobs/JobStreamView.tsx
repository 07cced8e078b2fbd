import { ErrorState } from "../../components/States";
import type { Connection, JobStreamState } from "./job-stream-state";
import { NodeOutputView } from "./NodeOutputView";
import { TimelineItem } from "./TimelineItem";

const CONNECTION_TEXT: Record<Connection, string> = {
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Connection lost; reconnecting…",
  ended: "Ended",
  stopped: "Not following",
};

/** The job's event stream: LLM replies as they grow, and the run as a timeline. */
export function JobStreamView({ stream }: { stream: JobStreamState }) {
  const finishedNodes = new Set(
    stream.timeline
      .filter((event) => event.event_type === "node_end")
      .map((event) => String(event.data.node)),
  );
  return (
    <section className="panel" aria-labelledby="stream-heading">
      <div className="job-stream-head">
        <h2 id="stream-heading">Live events</h2>
        <span className={`job-connection job-connection-${stream.connection}`} role="status">
          {CONNECTION_TEXT[stream.connection]}
        </span>
      </div>
      {stream.error !== undefined && <ErrorState error={stream.error} />}
      {stream.outputs.map((output) => (
        <NodeOutputView
          key={output.node}
          output={output}
          streaming={stream.connection !== "ended" && !finishedNodes.has(output.node)}
        />
      ))}
      <h3 id="timeline-heading">Timeline</h3>
      {stream.timeline.length === 0 ? (
        <p className="job-muted">No events yet.</p>
      ) : (
        <ol className="job-timeline" aria-labelledby="timeline-heading">
          {stream.timeline.map((event) => (
            <li key={event.seq} className={`job-event job-event-${event.event_type}`}>
              <span className="job-seq" aria-hidden="true">
                #{event.seq}
              </span>
              <div>
                <TimelineItem event={event} />
              </div>
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}
