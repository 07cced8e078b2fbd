import { Field } from "../../components/Field";
import { PLATFORM_LABELS, PLATFORMS } from "../agents/agent-types";
import type { StepProps } from "./step-props";

/** Step 1: what the agent is called and where its results are delivered. */
export function PlatformStep({ draft, errors, update }: StepProps) {
  return (
    <>
      <Field label="Name (required)" help="Unique among your organization's agents." error={errors.name}>
        {(props) => (
          <input
            {...props}
            required
            value={draft.name}
            onChange={(event) => update({ name: event.target.value }, "name")}
          />
        )}
      </Field>
      <Field label="Description" error={errors.description}>
        {(props) => (
          <textarea
            {...props}
            className="agent-short-text"
            value={draft.description}
            onChange={(event) => update({ description: event.target.value }, "description")}
          />
        )}
      </Field>
      <Field label="Tags" help="Comma-separated, such as support, billing." error={errors.tags}>
        {(props) => (
          <input
            {...props}
            value={draft.tags}
            onChange={(event) => update({ tags: event.target.value }, "tags")}
          />
        )}
      </Field>
      <fieldset
        className={errors.platform ? "field field-invalid wizard-platforms" : "field wizard-platforms"}
        aria-describedby="platform-help"
      >
        <legend>Platform (required)</legend>
        <small id="platform-help" className="field-help">
          Where Steward delivers each result. It cannot be changed later.
        </small>
        <div className="wizard-platform-options">
          {PLATFORMS.map((platform) => (
            <label
              key={platform}
              className={
                draft.platform === platform
                  ? "wizard-platform-option wizard-platform-chosen"
                  : "wizard-platform-option"
              }
            >
              <input
                type="radio"
                name="platform"
                value={platform}
                checked={draft.platform === platform}
                onChange={() => update({ platform }, "platform")}
              />
              {PLATFORM_LABELS[platform]}
            </label>
          ))}
        </div>
        {errors.platform && (
          <small className="field-error" role="alert">
            {errors.platform}
          </small>
        )}
      </fieldset>
    </>
  );
}
