/**
 * Waits until `check` holds (or 10 s pass), for work Steward finishes in the background
 * — a scheduler run, a delivery. The caller asserts afterwards, so a timeout fails there.
 */
export async function until(check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check()) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
}
