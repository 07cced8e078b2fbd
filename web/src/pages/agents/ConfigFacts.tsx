import { humanize } from "./format";

/** A config object as a definition list; nested objects become nested lists. */
export function ConfigFacts({ config }: { config: Record<string, unknown> }) {
  const entries = Object.entries(config);
  if (entries.length === 0) return <p className="agent-muted">None set.</p>;
  return (
    <dl className="facts">
      {entries.map(([key, value]) => (
        <div key={key} className="agent-facts-row">
          <dt>{humanize(key)}</dt>
          <dd>
            <FactValue value={value} />
          </dd>
        </div>
      ))}
    </dl>
  );
}

function FactValue({ value }: { value: unknown }) {
  if (value === null || value === undefined) return <>—</>;
  if (Array.isArray(value)) {
    return (
      <>{value.every((item) => typeof item !== "object") ? value.join(", ") || "—" : JSON.stringify(value)}</>
    );
  }
  if (typeof value === "object") return <ConfigFacts config={value as Record<string, unknown>} />;
  if (typeof value === "boolean") return <>{value ? "yes" : "no"}</>;
  return <>{String(value)}</>;
}
