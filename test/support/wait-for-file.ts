import { access } from 'node:fs/promises';

/** Waits for a barrier's `<step>.reached` file: the held step is running. */
export async function waitForFile(path: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await access(path);
      return;
    } catch {
      if (Date.now() > deadline) throw new Error(`step never reached (${path} did not appear within ${timeoutMs} ms)`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
