import type { ChangeEvent } from "react";
import { Field } from "../../components/Field";
import { humanize } from "../agents/format";
import {
  choicesOf,
  errorAt,
  isChecked,
  type JsonSchema,
  jsonExample,
  kindOf,
  type MapRow,
  type RawObject,
  type RawValue,
} from "./json-schema";
import { CheckboxField, ChoicesField, MapField, SecretInput } from "./SchemaControls";

/** What every generated control needs besides its own schema and value. */
interface FormContext {
  errors: Record<string, string>;
  /** Paths relative to the form's root that hold secrets (`webhook_url`, `headers.*`). */
  secretFields: readonly string[];
  urlFields: readonly string[];
}

type Change = (value: RawValue, path: string) => void;

/**
 * The controls of an object schema's properties, in schema order: text, number, select,
 * checkbox, checkbox groups, one-per-line lists, name/value maps, nested objects as
 * fieldsets, and a JSON textarea for whatever none of those can draw (arrays of objects,
 * unions of objects). `path` names the object as the API's field errors do (`platform_config`).
 */
export function SchemaFields({
  schema,
  value,
  path,
  onChange,
  errors,
  secretFields = [],
  urlFields = [],
}: {
  schema: JsonSchema;
  value: RawObject | undefined;
  path: string;
  onChange: (next: RawObject, changedPath: string) => void;
  errors: Record<string, string>;
  secretFields?: readonly string[];
  urlFields?: readonly string[];
}) {
  return (
    <ObjectFields
      schema={schema}
      value={value ?? {}}
      path={path}
      relative=""
      onChange={onChange}
      context={{ errors, secretFields, urlFields }}
    />
  );
}

/**
 * `within` is the title of the nearest optional object around these fields: what they are
 * required for ("Max calls (required for Rate)"), as the whole object may be left empty.
 */
function ObjectFields({
  schema,
  value,
  path,
  relative,
  within,
  onChange,
  context,
}: {
  schema: JsonSchema;
  value: RawObject;
  path: string;
  relative: string;
  within?: string;
  onChange: (next: RawObject, changedPath: string) => void;
  context: FormContext;
}) {
  const required = new Set(schema.required ?? []);
  const properties = Object.entries(schema.properties ?? {});
  if (properties.length === 0) return <p className="agent-muted">Nothing to set here.</p>;
  return (
    <>
      {properties.map(([name, property]) => (
        <PropertyField
          key={name}
          name={name}
          schema={property}
          required={required.has(name)}
          value={value[name]}
          path={`${path}.${name}`}
          relative={relative ? `${relative}.${name}` : name}
          within={within}
          onChange={(next, changedPath) => onChange({ ...value, [name]: next }, changedPath)}
          context={context}
        />
      ))}
    </>
  );
}

function PropertyField({
  name,
  schema,
  required,
  value,
  path,
  relative,
  within,
  onChange,
  context,
}: {
  name: string;
  schema: JsonSchema;
  required: boolean;
  value: RawValue | undefined;
  path: string;
  relative: string;
  within: string | undefined;
  onChange: Change;
  context: FormContext;
}) {
  const title = schema.title ?? humanize(name);
  const label = required ? `${title} (${within ? `required for ${within}` : "required"})` : title;
  const change = (next: RawValue) => onChange(next, path);
  const text = typeof value === "string" ? value : "";
  // A default is said in the help: as a placeholder it would pass for a value typed in.
  const fallback = schema.default === undefined ? undefined : String(schema.default);
  const help =
    fallback === undefined ? schema.description : withSentence(schema.description, `Default: ${fallback}.`);

  switch (kindOf(schema)) {
    case "object":
      return (
        <fieldset className="wizard-group">
          <legend>{title}</legend>
          {schema.description && <p className="field-help">{schema.description}</p>}
          {context.errors[path] && (
            <p className="field-error" role="alert">
              {context.errors[path]}
            </p>
          )}
          <ObjectFields
            schema={schema}
            value={typeof value === "object" && !Array.isArray(value) ? value : {}}
            path={path}
            relative={relative}
            within={required ? within : title}
            onChange={onChange}
            context={context}
          />
        </fieldset>
      );
    case "map":
      return (
        <MapField
          title={title}
          legend={label}
          help={schema.description}
          rows={Array.isArray(value) ? (value as MapRow[]) : []}
          secret={context.secretFields.includes(`${relative}.*`)}
          error={errorAt(context.errors, path)}
          onChange={change}
        />
      );
    case "boolean":
      return (
        <CheckboxField
          label={title}
          help={schema.description}
          checked={isChecked(schema, value)}
          onChange={change}
        />
      );
    case "choices":
      return (
        <ChoicesField
          label={label}
          help={schema.description}
          options={(schema.items && choicesOf(schema.items)) ?? []}
          picked={Array.isArray(value) ? (value as string[]) : []}
          error={errorAt(context.errors, path)}
          onChange={change}
        />
      );
    case "choice":
      return (
        <Field label={label} help={schema.description} error={errorAt(context.errors, path)}>
          {(props) => (
            <select
              {...props}
              required={required}
              value={text}
              onChange={(event) => change(event.target.value)}
            >
              <option value="">
                {required ? "Choose…" : fallback ? `Default (${fallback})` : "Default"}
              </option>
              {choicesOf(schema)?.map((choice) => (
                <option key={String(choice)} value={String(choice)}>
                  {String(choice)}
                </option>
              ))}
            </select>
          )}
        </Field>
      );
    case "list":
      return (
        <Field
          label={label}
          help={withSentence(schema.description, "One per line.")}
          error={errorAt(context.errors, path)}
        >
          {(props) => (
            <textarea
              {...props}
              className="agent-short-text"
              required={required}
              value={text}
              onChange={(event) => change(event.target.value)}
            />
          )}
        </Field>
      );
    case "number":
      return (
        <Field label={label} help={help} error={errorAt(context.errors, path)}>
          {(props) => (
            <input
              {...props}
              type="text"
              inputMode={schema.type === "integer" ? "numeric" : "decimal"}
              required={required}
              value={text}
              onChange={(event) => change(event.target.value)}
            />
          )}
        </Field>
      );
    case "text": {
      const url = context.urlFields.includes(relative);
      return (
        <Field label={label} help={help} error={errorAt(context.errors, path)}>
          {(props) => {
            const input = {
              ...props,
              inputMode: url ? ("url" as const) : undefined,
              spellCheck: false,
              required,
              placeholder: url ? "https://" : undefined,
              value: text,
              onChange: (event: ChangeEvent<HTMLInputElement>) => change(event.target.value),
            };
            return context.secretFields.includes(relative) ? (
              <SecretInput label={title} input={input} />
            ) : (
              <input {...input} autoComplete="off" />
            );
          }}
        </Field>
      );
    }
    case "json":
      // No control fits this shape: its JSON is typed as it is, checked as JSON on Next.
      return (
        <Field
          label={label}
          help={withSentence(schema.description, `As JSON, such as ${jsonExample(schema)}`)}
          error={errorAt(context.errors, path)}
        >
          {(props) => (
            <textarea
              {...props}
              className="agent-short-text"
              spellCheck={false}
              required={required}
              placeholder={jsonExample(schema)}
              value={text}
              onChange={(event) => change(event.target.value)}
            />
          )}
        </Field>
      );
  }
}

/** `description` followed by a sentence of the form's own ("One per line."). */
function withSentence(description: string | undefined, sentence: string): string {
  return description ? `${description.replace(/\.$/, "")}. ${sentence}` : sentence;
}
