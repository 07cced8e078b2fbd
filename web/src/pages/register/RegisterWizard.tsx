import { type FormEvent, useEffect, useRef, useState } from "react";
import { ApiError, errorMessage } from "../../api/client";
import { useResource } from "../../api/hooks";
import { useApi } from "../../auth/session";
import { ResourceView } from "../../components/States";
import type { Agent } from "../agents/agent-types";
import { EndpointStep } from "./EndpointStep";
import { GovernanceStep } from "./GovernanceStep";
import { withoutErrorsAt } from "./json-schema";
import { PlatformSettingsStep } from "./PlatformSettingsStep";
import { PlatformStep } from "./PlatformStep";
import { ReviewStep } from "./ReviewStep";
import type { StepProps } from "./step-props";
import { TestStep } from "./TestStep";
import { WizardProgress } from "./WizardProgress";
import {
  type ConfigCatalog,
  type Draft,
  EMPTY_DRAFT,
  REVIEW_STEP,
  registrationBody,
  STEPS,
  stepErrors,
  stepOfField,
  TEST_STEP,
} from "./wizard-draft";
import "../agents/agents.css";

const FORM_STEPS = [PlatformStep, EndpointStep, PlatformSettingsStep, GovernanceStep];

/** Registering an external agent, step by step, with forms generated from the adapters' config schemas. */
export function RegisterWizard() {
  const catalog = useResource<ConfigCatalog>("/external-agents/config-schemas");
  return (
    <section aria-labelledby="register-title">
      <h1 id="register-title">Register an agent</h1>
      <ResourceView resource={catalog}>{(data) => <Wizard catalog={data} />}</ResourceView>
    </section>
  );
}

function Wizard({ catalog }: { catalog: ConfigCatalog }) {
  const api = useApi();
  const [step, setStep] = useState(0);
  const [reached, setReached] = useState(0);
  const [draft, setDraft] = useState<Draft>(EMPTY_DRAFT);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [problem, setProblem] = useState<string>();
  const [submitting, setSubmitting] = useState(false);
  const [agent, setAgent] = useState<Agent>();

  // Each new step moves focus to its heading, so keyboard and screen-reader users start there.
  const heading = useRef<HTMLHeadingElement>(null);
  const firstRender = useRef(true);
  // biome-ignore lint/correctness/useExhaustiveDependencies: runs on every step change by design
  useEffect(() => {
    if (firstRender.current) firstRender.current = false;
    else heading.current?.focus();
  }, [step]);

  const goTo = (target: number) => {
    setStep(target);
    setReached((furthest) => Math.max(furthest, target));
  };

  const update = (patch: Partial<Draft>, changedPath: string) => {
    setDraft((current) => ({ ...current, ...patch }));
    setErrors((current) => withoutErrorsAt(current, changedPath));
  };

  const register = async () => {
    setSubmitting(true);
    try {
      const created = await api.post<Agent>("/external-agents", registrationBody(draft, catalog));
      setErrors({});
      setAgent(created);
      goTo(TEST_STEP);
    } catch (failure) {
      const fieldErrors = failure instanceof ApiError ? failure.fieldErrors : {};
      const fields = Object.keys(fieldErrors);
      setErrors(fieldErrors);
      setProblem(
        fields.length > 0
          ? `Steward did not accept the agent: ${fields.length === 1 ? "a field needs" : "some fields need"} changing.`
          : errorMessage(failure),
      );
      if (fields.length > 0) setStep(Math.min(...fields.map(stepOfField)));
    } finally {
      setSubmitting(false);
    }
  };

  const next = (event: FormEvent) => {
    event.preventDefault();
    // Review checks every step again: steps can be revisited from the progress bar and left half-edited.
    const checked = step === REVIEW_STEP ? FORM_STEPS.map((_, index) => index) : [step];
    const failing = checked.find((index) => Object.keys(stepErrors(index, draft, catalog)).length > 0);
    if (failing !== undefined) {
      const found = stepErrors(failing, draft, catalog);
      setErrors((current) => ({ ...current, ...found }));
      setProblem("Fill in the marked fields to go on.");
      setStep(failing);
      return;
    }
    setProblem(undefined);
    if (step === REVIEW_STEP) void register();
    else goTo(step + 1);
  };

  const back = () => {
    setProblem(undefined);
    setStep(step - 1);
  };

  const props: StepProps = { draft, catalog, errors, update };
  const FormStep = FORM_STEPS[step];
  const current = STEPS[step] ?? STEPS[0];
  return (
    <div className="wizard">
      <WizardProgress
        step={step}
        reached={agent ? TEST_STEP : reached}
        locked={agent !== undefined}
        onStep={(target) => {
          setProblem(undefined);
          setStep(target);
        }}
      />
      <div className="panel wizard-body">
        <h2 ref={heading} tabIndex={-1} id="step-title">
          <span className="wizard-step-count">
            Step {step + 1} of {STEPS.length}:
          </span>{" "}
          {current.title}
        </h2>
        {problem && (
          <p className="agent-notice-bad" role="alert">
            {problem}
          </p>
        )}
        {agent ? (
          <TestStep agent={agent} />
        ) : (
          <form onSubmit={next} noValidate aria-labelledby="step-title">
            {FormStep ? (
              <FormStep {...props} />
            ) : (
              <>
                <UnplacedErrors errors={errors} />
                <ReviewStep body={registrationBody(draft, catalog)} catalog={catalog} onEdit={setStep} />
              </>
            )}
            <div className="wizard-actions">
              <button type="button" className="secondary" onClick={back} disabled={step === 0}>
                Back
              </button>
              <button type="submit" disabled={submitting}>
                {step === REVIEW_STEP ? (submitting ? "Registering…" : "Register agent") : "Next"}
              </button>
            </div>
          </form>
        )}
      </div>
    </div>
  );
}

/** Field errors of the server that no step's form shows (a field the wizard does not set). */
function UnplacedErrors({ errors }: { errors: Record<string, string> }) {
  const unplaced = Object.entries(errors).filter(([field]) => stepOfField(field) === REVIEW_STEP);
  if (unplaced.length === 0) return null;
  return (
    <ul className="agent-notice-bad">
      {unplaced.map(([field, message]) => (
        <li key={field}>
          <code>{field}</code> {message}
        </li>
      ))}
    </ul>
  );
}
