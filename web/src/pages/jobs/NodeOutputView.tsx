import { useId } from "react";
import type { NodeOutput } from "./job-stream-state";

/** An LLM node's reply, growing token by token. */
export function NodeOutputView({ output, streaming }: { output: NodeOutput; streaming: boolean }) {
  const headingId = useId();
  return (
    <section className="job-output" aria-labelledby={headingId} aria-busy={streaming}>
      <h3 id={headingId}>LLM reply of node {output.node}</h3>
      <p className="job-output-text">
        {output.text}
        {streaming && <span className="job-cursor" aria-hidden="true" />}
      </p>
      <p className="job-muted">
        {output.tokens} {output.tokens === 1 ? "token" : "tokens"}
        {streaming ? ", still arriving" : ""}
      </p>
    </section>
  );
}
