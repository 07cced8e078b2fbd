import { STEPS } from "./wizard-draft";

/** The wizard's steps: done ones can be revisited until the agent is registered. */
export function WizardProgress({
  step,
  reached,
  locked,
  onStep,
}: {
  step: number;
  reached: number;
  locked: boolean;
  onStep: (step: number) => void;
}) {
  return (
    <nav aria-label="Registration steps">
      <ol className="wizard-steps">
        {STEPS.map((entry, index) => {
          const state = index === step ? "current" : index <= reached ? "done" : "todo";
          const canVisit = !locked && index !== step && index <= reached && index < STEPS.length - 1;
          return (
            <li key={entry.title} className={`wizard-step wizard-step-${state}`}>
              {canVisit ? (
                <button type="button" className="link-button" onClick={() => onStep(index)}>
                  <span className="wizard-step-number">{index + 1}</span> {entry.title}
                </button>
              ) : (
                <span aria-current={index === step ? "step" : undefined}>
                  <span className="wizard-step-number">{index + 1}</span> {entry.title}
                </span>
              )}
            </li>
          );
        })}
      </ol>
    </nav>
  );
}
