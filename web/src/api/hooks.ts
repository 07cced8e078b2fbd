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
 * Loads `path` (with `query`) and keeps the last answer while a new query of the same
 * path loads, so a table does not blank out when its filters change; another path (a
 * different record) starts empty. A null path loads nothing.
 */
export function useResource<T>(path: string | null, query: Query = {}): Resource<T> {
  return useLoader<T>(
    path === null ? null : (api) => api.get<T>(path, query),
    [path, JSON.stringify(query)],
    path,
  );
}

interface LoadState<T> {
  data?: T;
  error?: unknown;
  loading: boolean;
  /** Which `identity` the data and error belong to. */
  key?: string;
}

/**
 * Like useResource, for anything the API can answer: several calls, a computed value.
 * An answer is shown while `identity` (by default all of `deps`) stays the same; a
 * reload while a load is under way waits for that one instead of discarding it, so
 * polling never starves a slow answer.
 */
export function useLoader<T>(
  load: ((api: Api) => Promise<T>) | null,
  deps: unknown[],
  identity: unknown = deps,
): Resource<T> {
  const api = useApi();
  const key = JSON.stringify(identity);
  const [state, setState] = useState<LoadState<T>>({ loading: load !== null });
  const [generation, setGeneration] = useState(0);
  const loadRef = useRef(load);
  loadRef.current = load;
  const inFlight = useRef(false);
  // biome-ignore lint/correctness/useExhaustiveDependencies: the caller's deps decide when to load again
  useEffect(() => {
    const current = loadRef.current;
    if (!current) {
      setState({ loading: false, key });
      return;
    }
    let stale = false;
    inFlight.current = true;
    setState((previous) => ({ ...previous, loading: true }));
    current(api).then(
      (data) => {
        if (stale) return;
        inFlight.current = false;
        setState({ data, loading: false, key });
      },
      (error: unknown) => {
        if (stale) return;
        inFlight.current = false;
        setState((previous) => ({
          data: previous.key === key ? previous.data : undefined,
          error,
          loading: false,
          key,
        }));
      },
    );
    return () => {
      stale = true;
    };
  }, [api, generation, ...deps]);
  const reload = useCallback(() => {
    if (!inFlight.current) setGeneration((n) => n + 1);
  }, []);
  const current = state.key === key;
  return {
    data: current ? state.data : undefined,
    error: current ? state.error : undefined,
    loading: state.loading || !current,
    reload,
  };
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
