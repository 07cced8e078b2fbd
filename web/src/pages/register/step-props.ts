import type { ConfigCatalog, Draft } from "./wizard-draft";

/** What every form step of the wizard is given. */
export interface StepProps {
  draft: Draft;
  catalog: ConfigCatalog;
  errors: Record<string, string>;
  /** Applies `patch` to the draft; `changedPath` names the field edited, whose error then goes. */
  update: (patch: Partial<Draft>, changedPath: string) => void;
}
