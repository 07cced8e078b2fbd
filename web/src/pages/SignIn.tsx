import { type FormEvent, useState } from "react";
import { createApi, errorMessage } from "../api/client";
import { useSession } from "../auth/session";
import { Field } from "../components/Field";

/**
 * Sign-in with what the API accepts: an API key (`sk_live_…`) or a JWT from the
 * organization's identity provider. The credential is checked with one API call before
 * it is kept.
 */
export function SignIn() {
  const { signIn, expired } = useSession();
  const [credential, setCredential] = useState("");
  const [error, setError] = useState<string>();
  const [checking, setChecking] = useState(false);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const value = credential.trim();
    if (!value) {
      setError("Paste an API key or a JWT.");
      return;
    }
    setChecking(true);
    setError(undefined);
    try {
      await createApi(value, () => {}).get("/external-agents", { limit: 1 });
      signIn(value);
    } catch (failure) {
      setError(errorMessage(failure));
    } finally {
      setChecking(false);
    }
  };

  return (
    <main className="sign-in">
      <form onSubmit={submit} aria-labelledby="sign-in-title">
        <h1 id="sign-in-title">Sign in to Steward</h1>
        {expired && <p role="alert">Your session ended; sign in again.</p>}
        <Field label="API key or JWT" help="Kept in this browser tab only (session storage)." error={error}>
          {(props) => (
            <input
              {...props}
              type="password"
              autoComplete="off"
              value={credential}
              onChange={(event) => setCredential(event.target.value)}
            />
          )}
        </Field>
        <button type="submit" disabled={checking}>
          {checking ? "Checking…" : "Sign in"}
        </button>
      </form>
    </main>
  );
}
