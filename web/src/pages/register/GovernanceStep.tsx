import type { RawObject } from "./json-schema";
import { SchemaFields } from "./SchemaFields";
import type { StepProps } from "./step-props";
import { type Draft, GOVERNANCE_SECTIONS, type GovernanceSection } from "./wizard-draft";

/** What leaving a section empty means; the fields themselves come from Steward's schemas. */
const INTROS: Record<GovernanceSection, string> = {
  rate_limit_config: "Empty windows fall back to the organization's defaults.",
  budget_config: "Caps in the budget's currency. Leave empty for no cap.",
  approval_config: "Leave empty and no call to this agent waits for a person.",
};

/** Step 4: rate limits, budget and approval rules, all optional, drawn from the config-schemas answer. */
export function GovernanceStep({ draft, catalog, errors, update }: StepProps) {
  return (
    <>
      {GOVERNANCE_SECTIONS.map((section) => {
        const form = catalog.governance[section];
        return (
          <fieldset key={section} className="wizard-group">
            <legend>{form.schema.title ?? section}</legend>
            <p className="field-help">{INTROS[section]}</p>
            <SchemaFields
              schema={form.schema}
              value={draft[section]}
              path={section}
              errors={errors}
              secretFields={form.secret_fields}
              urlFields={form.url_fields}
              onChange={(next: RawObject, changedPath) =>
                update({ [section]: next } as Partial<Draft>, changedPath)
              }
            />
          </fieldset>
        );
      })}
    </>
  );
}
