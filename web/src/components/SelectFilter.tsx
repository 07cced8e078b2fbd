import { Field } from "./Field";

/** A choice of a filter: a bare string is both the value and the label. */
export type FilterOption = string | { value: string; label: string };

/**
 * A labelled `<select>` that narrows a list. `anyLabel` names the empty choice that
 * leaves the filter off; without it the options alone are offered.
 */
export function SelectFilter({
  label,
  value,
  options,
  onChange,
  anyLabel,
}: {
  label: string;
  value: string;
  options: readonly FilterOption[];
  onChange: (value: string) => void;
  anyLabel?: string;
}) {
  return (
    <Field label={label}>
      {(props) => (
        <select {...props} value={value} onChange={(event) => onChange(event.target.value)}>
          {anyLabel !== undefined && <option value="">{anyLabel}</option>}
          {options.map((option) => {
            const { value: optionValue, label: optionLabel } =
              typeof option === "string" ? { value: option, label: option } : option;
            return (
              <option key={optionValue} value={optionValue}>
                {optionLabel}
              </option>
            );
          })}
        </select>
      )}
    </Field>
  );
}
