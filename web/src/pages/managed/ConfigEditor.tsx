import { type FormEvent, useState } from "react";
import { ApiError, errorMessage } from "../../api/client";
import { useApi } from "../../auth/session";
import { Field } from "../../components/Field";
import {
  type ConfigField,
  configFields,
  errorsByKey,
  fromText,
  InvalidJsonError,
  toText,
} from "./config-schema";
import type { EffectiveConfig } from "./managed-agent.types";

/**
 * Edits the stored layer of the agent's config and saves it as a new version: one field
 * per key the agent's schema declares, or the whole object as JSON when it declares none.
 * Remount it (key) when the stored version changes, to start from the new one.
 */
export function ConfigEditor({
  agentId,
  schema,
  effective,
  stored,
  onSaved,
}: {
  agentId: string;
  schema: Record<string, unknown> | null;
  effective: EffectiveConfig;
  stored: Record<string, unknown>;
  onSaved(view: EffectiveConfig): void;
}) {
  const fields = configFields(schema);
  return fields ? (
    <FieldsEditor agentId={agentId} fields={fields} effective={effective} stored={stored} onSaved={onSaved} />
  ) : (
    <JsonEditor agentId={agentId} stored={stored} onSaved={onSaved} />
  );
}

/** Saving, and the server's validation errors by config key ("" for the whole config). */
function useSave(agentId: string, keys: string[], onSaved: (view: EffectiveConfig) => void) {
  const api = useApi();
  const [saving, setSaving] = useState(false);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const save = async (config: Record<string, unknown>) => {
    setSaving(true);
    setErrors({});
    try {
      onSaved(await api.put<EffectiveConfig>(`/agents/${encodeURIComponent(agentId)}/config`, config));
    } catch (error) {
      const byKey = error instanceof ApiError ? errorsByKey(error.fieldErrors, keys) : {};
      // The summary above the errors of keys without a field of their own.
      byKey[""] = [errorMessage(error), byKey[""]].filter(Boolean).join(": ");
      setErrors(byKey);
    } finally {
      setSaving(false);
    }
  };
  return { saving, errors, setErrors, save };
}

function FieldsEditor({
  agentId,
  fields,
  effective,
  stored,
  onSaved,
}: {
  agentId: string;
  fields: ConfigField[];
  effective: EffectiveConfig;
  stored: Record<string, unknown>;
  onSaved(view: EffectiveConfig): void;
}) {
  const keys = fields.map((field) => field.key);
  const [texts, setTexts] = useState(() => Object.fromEntries(keys.map((key) => [key, toText(stored[key])])));
  const { saving, errors, setErrors, save } = useSave(agentId, keys, onSaved);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    // Stored keys the schema no longer declares are kept, not dropped unseen.
    const config: Record<string, unknown> = Object.fromEntries(
      Object.entries(stored).filter(([key]) => !keys.includes(key)),
    );
    const invalid: Record<string, string> = {};
    for (const field of fields) {
      try {
        const value = fromText(field, texts[field.key] ?? "");
        if (value !== undefined) config[field.key] = value;
      } catch (error) {
        if (!(error instanceof InvalidJsonError)) throw error;
        invalid[field.key] = error.message;
      }
    }
    if (Object.keys(invalid).length > 0) setErrors({ ...invalid, "": "Some values are not valid JSON." });
    else void save(config);
  };
  return (
    <form className="managed-config-form" onSubmit={submit} noValidate aria-label="Edit config">
      <p className="field-help">
        Empty fields are not stored: the default or the environment's value applies.
      </p>
      <div className="grid">
        {fields.map((field) => (
          <Field key={field.key} label={field.key} help={helpFor(field, effective)} error={errors[field.key]}>
            {(props) => (
              <ConfigInput
                field={field}
                value={texts[field.key] ?? ""}
                onChange={(text) => setTexts((current) => ({ ...current, [field.key]: text }))}
                placeholder={
                  Object.hasOwn(effective.sources, field.key)
                    ? toText(effective.config[field.key])
                    : undefined
                }
                props={props}
              />
            )}
          </Field>
        ))}
      </div>
      <SaveBar saving={saving} error={errors[""]} />
    </form>
  );
}

function helpFor(field: ConfigField, effective: EffectiveConfig): string {
  const source = Object.hasOwn(effective.sources, field.key) ? effective.sources[field.key] : undefined;
  const now = source ? `In force: ${toText(effective.config[field.key])} (${source}).` : "Not set.";
  return field.description ? `${field.description.replace(/\.$/, "")}. ${now}` : now;
}

function ConfigInput({
  field,
  value,
  onChange,
  placeholder,
  props,
}: {
  field: ConfigField;
  value: string;
  onChange(text: string): void;
  /** The value in force when nothing is stored. */
  placeholder?: string;
  props: { id: string; "aria-describedby"?: string; "aria-invalid"?: boolean };
}) {
  if (field.kind === "enum" || field.kind === "boolean") {
    const options = field.kind === "boolean" ? [true, false] : field.options;
    return (
      <select {...props} value={value} onChange={(event) => onChange(event.target.value)}>
        <option value="">Not stored</option>
        {options.map((option) => (
          <option key={toText(option)} value={toText(option)}>
            {toText(option)}
          </option>
        ))}
      </select>
    );
  }
  if (field.kind === "json")
    return (
      <textarea
        {...props}
        value={value}
        rows={3}
        placeholder={placeholder}
        onChange={(event) => onChange(event.target.value)}
      />
    );
  const numeric = field.kind === "integer" || field.kind === "number";
  return (
    <input
      {...props}
      type={numeric ? "number" : "text"}
      step={field.kind === "integer" ? 1 : undefined}
      value={value}
      placeholder={placeholder}
      onChange={(event) => onChange(event.target.value)}
    />
  );
}

function JsonEditor({
  agentId,
  stored,
  onSaved,
}: {
  agentId: string;
  stored: Record<string, unknown>;
  onSaved(view: EffectiveConfig): void;
}) {
  const [text, setText] = useState(() => JSON.stringify(stored, null, 2));
  const { saving, errors, setErrors, save } = useSave(agentId, [], onSaved);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    let config: unknown;
    try {
      config = JSON.parse(text);
    } catch {
      setErrors({ "": "The config is not valid JSON." });
      return;
    }
    if (config === null || typeof config !== "object" || Array.isArray(config))
      setErrors({ "": "The config must be a JSON object." });
    else void save(config as Record<string, unknown>);
  };
  return (
    <form className="managed-config-form" onSubmit={submit} noValidate aria-label="Edit config">
      <Field
        label="Stored config (JSON)"
        help="The agent declares no config schema: any JSON object is stored."
        error={errors[""]}
      >
        {(props) => (
          <textarea {...props} value={text} rows={8} onChange={(event) => setText(event.target.value)} />
        )}
      </Field>
      <SaveBar saving={saving} />
    </form>
  );
}

function SaveBar({ saving, error }: { saving: boolean; error?: string }) {
  return (
    <div className="managed-save">
      <button type="submit" disabled={saving}>
        {saving ? "Saving…" : "Save as new version"}
      </button>
      {error && (
        <p className="field-error" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}
