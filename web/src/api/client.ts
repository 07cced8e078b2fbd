/**
 * The dashboard's only way to Steward: the public REST API under /api/v1, with the
 * signed-in credential as a bearer token. Errors arrive in Steward's envelope
 * `{error: {code, message, request_id, details}}` and become an ApiError.
 */

export interface FieldError {
  field: string;
  message: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
    /** Steward's id of the request, to quote to an operator (it is in the server's log). */
    readonly requestId?: string,
  ) {
    super(message);
    this.name = "ApiError";
  }

  /** Validation errors by field (`platform_config.webhook_url` → message). */
  get fieldErrors(): Record<string, string> {
    const errors = Array.isArray(this.details.errors) ? (this.details.errors as FieldError[]) : [];
    const byField: Record<string, string> = {};
    for (const error of errors) byField[error.field] ??= error.message;
    if (typeof this.details.field === "string") byField[this.details.field] ??= this.message;
    return byField;
  }
}

export type Query = Record<string, string | number | boolean | undefined | null>;

/** The envelope of every list endpoint (`?page=&limit=`, limit at most 100). */
export interface Page<T> {
  items: T[];
  total: number;
  page: number;
  limit: number;
  has_more: boolean;
}

export interface Api {
  get<T>(path: string, query?: Query): Promise<T>;
  post<T>(path: string, body?: unknown, headers?: Record<string, string>): Promise<T>;
  put<T>(path: string, body?: unknown): Promise<T>;
  patch<T>(path: string, body?: unknown): Promise<T>;
  delete<T>(path: string): Promise<T>;
  /** The response itself, for downloads (exports) and streams. */
  raw(path: string, query?: Query): Promise<Response>;
  /** A WebSocket URL for `path`, carrying the credential as `access_token` (browsers cannot set headers). */
  socketUrl(path: string, query?: Query): string;
}

export const API_PREFIX = "/api/v1";

export function withQuery(path: string, query: Query = {}): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

/** An API bound to a credential; `onUnauthorized` runs when Steward no longer accepts it. */
export function createApi(token: string, onUnauthorized: () => void): Api {
  const send = async (
    method: string,
    path: string,
    body?: unknown,
    extraHeaders: Record<string, string> = {},
  ) => {
    const headers: Record<string, string> = { authorization: `Bearer ${token}`, ...extraHeaders };
    if (body !== undefined) headers["content-type"] = "application/json";
    const response = await fetch(`${API_PREFIX}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status === 401) onUnauthorized();
    if (!response.ok) throw await toApiError(response);
    return response;
  };
  const json = async <T>(response: Response): Promise<T> =>
    (response.status === 204 ? undefined : await response.json()) as T;
  return {
    get: async (path, query) => json(await send("GET", withQuery(path, query))),
    post: async (path, body, headers) => json(await send("POST", path, body, headers)),
    put: async (path, body) => json(await send("PUT", path, body)),
    patch: async (path, body) => json(await send("PATCH", path, body)),
    delete: async (path) => json(await send("DELETE", path)),
    raw: (path, query) => send("GET", withQuery(path, query)),
    socketUrl(path, query = {}) {
      const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
      return `${scheme}//${window.location.host}${withQuery(`${API_PREFIX}${path}`, { ...query, access_token: token })}`;
    },
  };
}

async function toApiError(response: Response): Promise<ApiError> {
  try {
    const body = (await response.json()) as {
      error?: { code?: string; message?: string; details?: Record<string, unknown>; request_id?: string };
    };
    if (body.error)
      return new ApiError(
        response.status,
        body.error.code ?? "ERROR",
        body.error.message ?? response.statusText,
        body.error.details,
        body.error.request_id,
      );
  } catch {
    // Not Steward's envelope (a proxy's error page): fall through to the status line.
  }
  return new ApiError(response.status, "HTTP_ERROR", `${response.status} ${response.statusText}`);
}

/** What to show a person for any failure. */
export function errorMessage(error: unknown): string {
  if (error instanceof ApiError)
    // Steward's own failures say no more than "Internal error": the request id lets an operator find the cause.
    return error.status >= 500 && error.requestId
      ? `${error.message} (request ${error.requestId})`
      : error.message;
  if (error instanceof Error) return error.message;
  return String(error);
}
