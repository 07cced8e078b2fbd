import { Field } from "../../components/Field";
import { AUTH_TYPES, type AuthType } from "../agents/agent-types";
import { SchemaFields } from "./SchemaFields";
import type { StepProps } from "./step-props";

/** Step 2: the agent's URL and how Steward authenticates to it, with that auth type's settings. */
export function EndpointStep({ draft, catalog, errors, update }: StepProps) {
  const form = catalog.auth_types[draft.auth_type];
  return (
    <>
      <Field
        label="Endpoint URL (required)"
        help="The agent's http(s) endpoint. Steward POSTs each invocation here."
        error={errors.webhook_url}
      >
        {(props) => (
          <input
            {...props}
            required
            inputMode="url"
            spellCheck={false}
            placeholder="https://"
            value={draft.webhook_url}
            onChange={(event) => update({ webhook_url: event.target.value }, "webhook_url")}
          />
        )}
      </Field>
      <Field label="Authentication" help="How Steward authenticates to the agent." error={errors.auth_type}>
        {(props) => (
          <select
            {...props}
            value={draft.auth_type}
            onChange={(event) => update({ auth_type: event.target.value as AuthType }, "auth_type")}
          >
            {AUTH_TYPES.map((type) => (
              <option key={type} value={type}>
                {catalog.auth_types[type].schema.title ?? type}
              </option>
            ))}
          </select>
        )}
      </Field>
      {/* Auth types without settings (none) get no empty box. */}
      {Object.keys(form.schema.properties ?? {}).length > 0 && (
        <fieldset className="wizard-group">
          <legend>{form.schema.title ?? draft.auth_type} settings</legend>
          <SchemaFields
            schema={form.schema}
            value={draft.auth[draft.auth_type]}
            path="auth_config"
            errors={errors}
            secretFields={form.secret_fields}
            urlFields={form.url_fields}
            onChange={(next, changedPath) =>
              update({ auth: { ...draft.auth, [draft.auth_type]: next } }, changedPath)
            }
          />
        </fieldset>
      )}
    </>
  );
}
