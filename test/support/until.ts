/**
 * Polls `probe` every 500 ms until it answers a value (not undefined), and returns it; throws at the
 * deadline, with what `context` then says (e.g. a process's output) so a failure on CI explains itself.
 */
export async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 120_000, context?: () => string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${context ? `\n${context()}` : ''}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}
