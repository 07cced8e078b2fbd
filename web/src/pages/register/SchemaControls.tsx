import { type InputHTMLAttributes, useId, useState } from "react";
import type { MapRow } from "./json-schema";

/** The controls SchemaFields builds forms from that the shared Field component does not cover. */

/** A secret typed like a password, with a toggle to check what was typed. */
export function SecretInput({
  label,
  input,
}: {
  label: string;
  input: InputHTMLAttributes<HTMLInputElement>;
}) {
  const [shown, setShown] = useState(false);
  return (
    <div className="wizard-secret">
      <input {...input} type={shown ? "text" : "password"} autoComplete="new-password" />
      <button
        type="button"
        className="secondary"
        aria-label={`Show ${label}`}
        aria-pressed={shown}
        onClick={() => setShown(!shown)}
      >
        Show
      </button>
    </div>
  );
}

export function CheckboxField({
  label,
  help,
  checked,
  onChange,
}: {
  label: string;
  help?: string;
  checked: boolean;
  onChange: (checked: boolean) => void;
}) {
  const id = useId();
  return (
    <div className="field wizard-check">
      <label>
        <input
          type="checkbox"
          checked={checked}
          aria-describedby={help ? `${id}-help` : undefined}
          onChange={(event) => onChange(event.target.checked)}
        />{" "}
        {label}
      </label>
      {help && (
        <small id={`${id}-help`} className="field-help">
          {help}
        </small>
      )}
    </div>
  );
}

export function ChoicesField({
  label,
  help,
  options,
  picked,
  error,
  onChange,
}: {
  label: string;
  help?: string;
  options: Array<string | number>;
  picked: string[];
  error?: string;
  onChange: (picked: string[]) => void;
}) {
  const toggle = (option: string, on: boolean) =>
    onChange(on ? [...picked, option] : picked.filter((item) => item !== option));
  return (
    <fieldset className={error ? "field field-invalid wizard-choices" : "field wizard-choices"}>
      <legend>{label}</legend>
      {help && <small className="field-help">{help}</small>}
      <div className="wizard-choice-row">
        {options.map((option) => (
          <label key={String(option)}>
            <input
              type="checkbox"
              checked={picked.includes(String(option))}
              onChange={(event) => toggle(String(option), event.target.checked)}
            />{" "}
            {String(option)}
          </label>
        ))}
      </div>
      {error && (
        <small className="field-error" role="alert">
          {error}
        </small>
      )}
    </fieldset>
  );
}

/** Name/value rows for a map such as headers; values of a secret map are typed like passwords. */
export function MapField({
  title,
  legend,
  help,
  rows,
  secret,
  error,
  onChange,
}: {
  title: string;
  legend: string;
  help?: string;
  rows: MapRow[];
  secret: boolean;
  error?: string;
  onChange: (rows: MapRow[]) => void;
}) {
  const update = (index: number, row: MapRow) =>
    onChange(rows.map((current, i) => (i === index ? row : current)));
  return (
    <fieldset className={error ? "field field-invalid wizard-map" : "field wizard-map"}>
      <legend>{legend}</legend>
      {help && <small className="field-help">{help}</small>}
      {rows.map((row, index) => (
        // Rows have no identity of their own; their position is what the user edits.
        // biome-ignore lint/suspicious/noArrayIndexKey: see above
        <div className="wizard-map-row" key={index}>
          <input
            aria-label={`${title}: name ${index + 1}`}
            value={row.key}
            spellCheck={false}
            onChange={(event) => update(index, { ...row, key: event.target.value })}
          />
          <input
            aria-label={`${title}: value ${index + 1}`}
            type={secret ? "password" : "text"}
            autoComplete={secret ? "new-password" : "off"}
            value={row.value}
            onChange={(event) => update(index, { ...row, value: event.target.value })}
          />
          <button
            type="button"
            className="secondary"
            aria-label={`Remove ${row.key || `row ${index + 1}`}`}
            onClick={() => onChange(rows.filter((_, i) => i !== index))}
          >
            Remove
          </button>
        </div>
      ))}
      <button
        type="button"
        className="secondary"
        aria-label={`Add entry to ${title}`}
        onClick={() => onChange([...rows, { key: "", value: "" }])}
      >
        Add entry
      </button>
      {error && (
        <small className="field-error" role="alert">
          {error}
        </small>
      )}
    </fieldset>
  );
}
