import { useCallback, useEffect, useRef, useState } from "react";
import { useApi } from "../auth/session";
import type { Api, Query } from "./client";

export interface Resource<T> {
  data?: T;
  error?: unknown;
  loading: boolean;
  /** Fetches again (after a change, or on a retry button). */
  reload(): void;
}

/**
 * Loads `path` (with `query`) and keeps the last answer while a new one loads, so a
 * table does not blank out when its filters change. A null path loads nothing.
 */
export function useResource<T>(path: string | null, query: Query = {}): Resource<T> {
  return useLoader<T>(path === null ? null : (api) => api.get<T>(path, query), [path, JSON.stringify(query)]);
}

/** Like useResource, for anything the API can answer: several calls, a computed value. */
export function useLoader<T>(load: ((api: Api) => Promise<T>) | null, deps: unknown[]): Resource<T> {
  const api = useApi();
  const [state, setState] = useState<{ data?: T; error?: unknown; loading: boolean }>({
    loading: load !== null,
  });
  const [generation, setGeneration] = useState(0);
  const loadRef = useRef(load);
  loadRef.current = load;
  // biome-ignore lint/correctness/useExhaustiveDependencies: the caller's deps decide when to load again
  useEffect(() => {
    const current = loadRef.current;
    if (!current) {
      setState({ loading: false });
      return;
    }
    let stale = false;
    setState((previous) => ({ ...previous, loading: true }));
    current(api).then(
      (data) => {
        if (!stale) setState({ data, loading: false });
      },
      (error: unknown) => {
        if (!stale) setState((previous) => ({ data: previous.data, error, loading: false }));
      },
    );
    return () => {
      stale = true;
    };
  }, [api, generation, ...deps]);
  const reload = useCallback(() => setGeneration((n) => n + 1), []);
  return { ...state, reload };
}

/** Calls `refresh` every `everyMs` while the page is visible (for lists that change on their own). */
export function useInterval(refresh: () => void, everyMs: number): void {
  useEffect(() => {
    const timer = setInterval(() => {
      if (document.visibilityState === "visible") refresh();
    }, everyMs);
    return () => clearInterval(timer);
  }, [refresh, everyMs]);
}
