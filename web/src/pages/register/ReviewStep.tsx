import { Fragment, type ReactNode } from "react";
import type { AuthType, Platform } from "../agents/agent-types";
import { PLATFORM_LABELS } from "../agents/agent-types";
import { ConfigFacts } from "../agents/ConfigFacts";
import { maskSecrets } from "./json-schema";
import { type ConfigCatalog, GOVERNANCE_SECTIONS } from "./wizard-draft";

const HIDDEN = "•••••• (hidden)";
type Body = Record<string, unknown>;

/** Step 5: what will be registered, secrets hidden, each part with a way back to its step. */
export function ReviewStep({
  body,
  catalog,
  onEdit,
}: {
  body: Body;
  catalog: ConfigCatalog;
  onEdit: (step: number) => void;
}) {
  const platform = body.platform as Platform;
  const authType = body.auth_type as AuthType;
  const section = (key: string) => (body[key] ?? {}) as Body;
  return (
    <div className="wizard-review">
      <ReviewSection title="Platform" step={0} onEdit={onEdit}>
        <ConfigFacts
          config={{
            name: body.name,
            description: body.description ?? "—",
            tags: body.tags ?? [],
            platform: PLATFORM_LABELS[platform],
          }}
        />
      </ReviewSection>
      <ReviewSection title="Endpoint and authentication" step={1} onEdit={onEdit}>
        <ConfigFacts
          config={{
            endpoint_url: body.webhook_url,
            authentication: catalog.auth_types[authType].schema.title ?? authType,
            ...maskSecrets(section("auth_config"), catalog.auth_types[authType].secret_fields, HIDDEN),
          }}
        />
      </ReviewSection>
      <ReviewSection title="Platform settings" step={2} onEdit={onEdit}>
        <ConfigFacts
          config={maskSecrets(section("platform_config"), catalog.platforms[platform].secret_fields, HIDDEN)}
        />
      </ReviewSection>
      <ReviewSection title="Governance" step={3} onEdit={onEdit}>
        {GOVERNANCE_SECTIONS.map((key) => (
          <Fragment key={key}>
            <h4>{catalog.governance[key].schema.title ?? key}</h4>
            <ConfigFacts config={section(key)} />
          </Fragment>
        ))}
      </ReviewSection>
    </div>
  );
}

function ReviewSection({
  title,
  step,
  onEdit,
  children,
}: {
  title: string;
  step: number;
  onEdit: (step: number) => void;
  children: ReactNode;
}) {
  return (
    <section className="wizard-review-section">
      <div className="agent-section-head">
        <h3>{title}</h3>
        <button
          type="button"
          className="secondary"
          onClick={() => onEdit(step)}
          aria-label={`Edit ${title.toLowerCase()}`}
        >
          Edit
        </button>
      </div>
      {children}
    </section>
  );
}
