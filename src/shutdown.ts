/**
 * Waits for `work` to settle, or for `deadline` to pass, whichever comes first. Answers
 * whether everything finished in time; what did not keeps running until the process exits.
 */
export async function settledBefore(
  work: Iterable<Promise<unknown>>,
  deadline?: AbortSignal,
): Promise<boolean> {
  const pending = [...work];
  if (pending.length === 0) return true;
  const all = Promise.allSettled(pending).then(() => true);
  if (!deadline) return all;
  if (deadline.aborted) return false;
  let onAbort = () => {};
  const passed = new Promise<boolean>((resolve) => {
    onAbort = () => resolve(false);
    deadline.addEventListener("abort", onAbort, { once: true });
  });
  try {
    return await Promise.race([all, passed]);
  } finally {
    deadline.removeEventListener("abort", onAbort);
  }
}

/** An HTTP client pool (an undici dispatcher): closing it waits for its requests to end. */
interface Closable {
  close(): Promise<void>;
}

/**
 * Closes `dispatcher` once its requests are done, waiting until `deadline` at most.
 * Requests still running then are not cut here: failing them would record a failure (a job
 * dead-lettered on its last attempt, a delivery charged an attempt) for what is only a
 * shutdown. They end with the process, unsettled, and are picked up again elsewhere.
 */
export async function closeBefore(dispatcher: Closable, deadline?: AbortSignal): Promise<void> {
  await settledBefore([dispatcher.close()], deadline);
}
