import { createContext, type ReactNode, useCallback, useContext, useMemo, useState } from "react";
import { type Api, createApi } from "../api/client";

/**
 * The signed-in credential (an API key or a JWT), kept in session storage: it survives a
 * reload but not the browser tab, and is never written anywhere else.
 */
const STORAGE_KEY = "steward.credential";

interface SessionValue {
  /** Undefined until someone signs in. */
  api?: Api;
  signIn(credential: string): void;
  signOut(): void;
  /** Set when Steward refused the stored credential (expired, revoked). */
  expired: boolean;
}

const SessionContext = createContext<SessionValue | undefined>(undefined);

export function SessionProvider({ children }: { children: ReactNode }) {
  const [credential, setCredential] = useState(() => sessionStorage.getItem(STORAGE_KEY) ?? undefined);
  const [expired, setExpired] = useState(false);
  const signOut = useCallback(() => {
    sessionStorage.removeItem(STORAGE_KEY);
    setCredential(undefined);
  }, []);
  const signIn = useCallback((value: string) => {
    sessionStorage.setItem(STORAGE_KEY, value);
    setExpired(false);
    setCredential(value);
  }, []);
  const api = useMemo(
    () =>
      credential
        ? createApi(credential, () => {
            setExpired(true);
            signOut();
          })
        : undefined,
    [credential, signOut],
  );
  const value = useMemo(() => ({ api, signIn, signOut, expired }), [api, signIn, signOut, expired]);
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}

export function useSession(): SessionValue {
  const session = useContext(SessionContext);
  if (!session) throw new Error("useSession outside SessionProvider");
  return session;
}

/** The API of the signed-in user; only used below the sign-in gate, where there always is one. */
export function useApi(): Api {
  const { api } = useSession();
  if (!api) throw new Error("useApi before sign-in");
  return api;
}
