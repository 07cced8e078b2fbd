import { PLATFORM_LABELS } from "../agents/agent-types";
import { SchemaFields } from "./SchemaFields";
import type { StepProps } from "./step-props";

/** Step 3: the chosen platform's delivery settings, generated from its adapter's config schema. */
export function PlatformSettingsStep({ draft, catalog, errors, update }: StepProps) {
  if (!draft.platform) return <p>Choose a platform first.</p>;
  const platform = draft.platform;
  const form = catalog.platforms[platform];
  return (
    <>
      <p className="agent-muted">
        Where {PLATFORM_LABELS[platform]} results go. Secret values are stored encrypted and never shown
        again.
      </p>
      <SchemaFields
        schema={form.schema}
        value={draft.platformSettings[platform]}
        path="platform_config"
        errors={errors}
        secretFields={form.secret_fields}
        urlFields={form.url_fields}
        onChange={(next, changedPath) =>
          update({ platformSettings: { ...draft.platformSettings, [platform]: next } }, changedPath)
        }
      />
    </>
  );
}
