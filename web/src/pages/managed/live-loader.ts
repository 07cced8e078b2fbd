import { useCallback, useEffect, useRef, useState } from "react";
import type { Api } from "../../api/client";
import type { Resource } from "../../api/hooks";
import { useApi } from "../../auth/session";

export interface LiveResource<T> extends Resource<T> {
  /** Changes the loaded data in place (a live event); also applied to an answer still on its way. */
  update(change: (data: T) => T): void;
}

/**
 * Like useLoader, for data that live events keep changing: a change that arrives while
 * a load is in flight is applied to that load's answer too, since the answer may have
 * been read before the change happened.
 */
export function useLiveLoader<T>(load: (api: Api) => Promise<T>, deps: unknown[]): LiveResource<T> {
  const api = useApi();
  const [state, setState] = useState<{ data?: T; error?: unknown; loading: boolean }>({ loading: true });
  const [generation, setGeneration] = useState(0);
  const inFlight = useRef(new Set<Array<(data: T) => T>>());
  const loadRef = useRef(load);
  loadRef.current = load;
  // biome-ignore lint/correctness/useExhaustiveDependencies: the caller's deps decide when to load again
  useEffect(() => {
    const changes: Array<(data: T) => T> = [];
    inFlight.current.add(changes);
    let stale = false;
    setState((previous) => ({ ...previous, loading: true }));
    const settled = () => inFlight.current.delete(changes);
    loadRef.current(api).then(
      (data) => {
        settled();
        if (!stale)
          setState({ data: changes.reduce((current, change) => change(current), data), loading: false });
      },
      (error: unknown) => {
        settled();
        if (!stale) setState((previous) => ({ data: previous.data, error, loading: false }));
      },
    );
    return () => {
      stale = true;
      settled();
    };
  }, [api, generation, ...deps]);
  const reload = useCallback(() => setGeneration((n) => n + 1), []);
  const update = useCallback((change: (data: T) => T) => {
    for (const changes of inFlight.current) changes.push(change);
    setState((previous) =>
      previous.data === undefined ? previous : { ...previous, data: change(previous.data) },
    );
  }, []);
  return { ...state, reload, update };
}
