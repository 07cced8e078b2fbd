import { Link } from "react-router";
import type { Agent } from "../agents/agent-types";
import { InvokeForm } from "../agents/InvokeForm";

/** Step 6: the agent is registered; call it once to see it answer through governance. */
export function TestStep({ agent }: { agent: Agent }) {
  return (
    <>
      <p role="status" className="agent-notice-good">
        Registered <strong>{agent.name}</strong> (<code>{agent.id}</code>).
      </p>
      <InvokeForm
        agentId={agent.id}
        title={`Call ${agent.name} once`}
        nested
        initialInput="Hello from the Steward dashboard"
      />
      <p>
        <Link to={`/agents/${agent.id}`}>Open {agent.name}'s page</Link>
      </p>
    </>
  );
}
