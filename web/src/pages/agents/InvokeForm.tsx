import { type FormEvent, useState } from "react";
import { ApiError } from "../../api/client";
import { useApi } from "../../auth/session";
import { Field } from "../../components/Field";
import type { InvokeSuccess, PendingApproval } from "./agent-types";
import { InvocationResult, type InvokeOutcome } from "./InvocationResult";

/** Parses the optional context box: empty is no context, anything else must be a JSON object. */
function parseContext(text: string): { context?: Record<string, unknown>; error?: string } {
  if (!text.trim()) return {};
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value === "object" && value !== null && !Array.isArray(value)) {
      return { context: value as Record<string, unknown> };
    }
  } catch {
    // Reported below, like any other value that is not an object.
  }
  return { error: 'must be a JSON object, such as {"environment": "staging"}' };
}

/** Calls the agent once through governance (POST /external-agents/{id}/invoke) and shows what came back. */
export function InvokeForm({
  agentId,
  title = "Invoke",
  nested = false,
  initialInput = "",
  disabled = false,
  onInvoked,
}: {
  agentId: string;
  title?: string;
  /** Inside another titled section (the wizard's test step): a level-3 heading and no panel of its own. */
  nested?: boolean;
  initialInput?: string;
  disabled?: boolean;
  onInvoked?: () => void;
}) {
  const api = useApi();
  const [input, setInput] = useState(initialInput);
  const [contextText, setContextText] = useState("");
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState(false);
  const [outcome, setOutcome] = useState<InvokeOutcome>();

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const { context, error } = parseContext(contextText);
    const problems: Record<string, string> = {};
    if (!input.trim()) problems.input = "is required";
    if (error) problems.context = error;
    setErrors(problems);
    if (Object.keys(problems).length > 0) return;
    setBusy(true);
    try {
      const answer = await api.post<InvokeSuccess | PendingApproval>(`/external-agents/${agentId}/invoke`, {
        input,
        ...(context ? { context } : {}),
      });
      setOutcome(
        answer.status === "pending_approval"
          ? { pending: answer as PendingApproval }
          : { success: answer as InvokeSuccess },
      );
    } catch (failure) {
      if (failure instanceof ApiError && failure.code === "VALIDATION_ERROR") setErrors(failure.fieldErrors);
      setOutcome({ failure });
    } finally {
      setBusy(false);
      onInvoked?.();
    }
  };

  const headingId = `invoke-${agentId}-title`;
  const Heading = nested ? "h3" : "h2";
  return (
    <section className={nested ? undefined : "panel agent-panel"} aria-labelledby={headingId}>
      <Heading id={headingId}>{title}</Heading>
      <form onSubmit={submit} noValidate>
        <Field label="Input" help="What the agent is asked." error={errors.input}>
          {(props) => (
            <textarea {...props} value={input} onChange={(event) => setInput(event.target.value)} />
          )}
        </Field>
        <Field
          label="Context (optional)"
          help="A JSON object passed to the agent; its environment is what environment policies see."
          error={errors.context}
        >
          {(props) => (
            <textarea
              {...props}
              className="agent-short-text"
              value={contextText}
              onChange={(event) => setContextText(event.target.value)}
            />
          )}
        </Field>
        <button type="submit" disabled={busy || disabled}>
          {busy ? "Invoking…" : "Invoke"}
        </button>
        {disabled && <p className="agent-muted">Only active agents can be invoked.</p>}
      </form>
      {outcome && <InvocationResult outcome={outcome} nested={nested} />}
    </section>
  );
}
