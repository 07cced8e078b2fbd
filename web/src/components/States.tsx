import type { ReactNode } from "react";
import { errorMessage } from "../api/client";
import type { Resource } from "../api/hooks";

export function Loading({ label = "Loading…" }: { label?: string }) {
  return (
    <p className="state state-loading" role="status" aria-live="polite">
      {label}
    </p>
  );
}

export function ErrorState({ error, onRetry }: { error: unknown; onRetry?: () => void }) {
  return (
    <div className="state state-error" role="alert">
      <p>{errorMessage(error)}</p>
      {onRetry && (
        <button type="button" onClick={onRetry}>
          Try again
        </button>
      )}
    </div>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <p className="state state-empty">{children}</p>;
}

/**
 * The three states every screen has before its content: loading (first load only),
 * an error with a retry, and empty when `isEmpty` says so.
 */
export function ResourceView<T>({
  resource,
  isEmpty,
  empty,
  children,
}: {
  resource: Resource<T>;
  isEmpty?: (data: T) => boolean;
  empty?: ReactNode;
  children: (data: T) => ReactNode;
}) {
  const { data, error, loading, reload } = resource;
  if (error && data === undefined) return <ErrorState error={error} onRetry={reload} />;
  if (data === undefined) return loading ? <Loading /> : null;
  return (
    <>
      {error !== undefined && <ErrorState error={error} onRetry={reload} />}
      {isEmpty?.(data) ? <Empty>{empty ?? "Nothing here yet."}</Empty> : children(data)}
    </>
  );
}
