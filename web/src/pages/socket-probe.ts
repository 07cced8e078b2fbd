import { ApiError } from "../api/client";

/**
 * Why a WebSocket closed before it delivered anything, asked of the REST API: a browser
 * reports a refused handshake (401, 403, 404) only as close code 1006. `probe` is a GET
 * through the session's Api, so a 401 also signs the user out (its onUnauthorized).
 * Resolves to the error a retry would meet again, or undefined when retrying may help:
 * the GET worked, or the network or the server failed.
 */
export async function probeClosedSocket(probe: () => Promise<unknown>): Promise<unknown> {
  try {
    await probe();
    return undefined;
  } catch (error) {
    const lasting =
      error instanceof ApiError &&
      error.status >= 400 &&
      error.status < 500 &&
      error.status !== 408 &&
      error.status !== 429;
    return lasting ? error : undefined;
  }
}
