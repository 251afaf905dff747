// The guest's serial console, a file QEMU appends to: what init and the workload report
// ("SNAPGUEST …", "SNAPWL …") is read from here, so it works with or without a guest agent.
import { readFile } from 'node:fs/promises';
import { errnoCode } from '../../contract';

export class GuestConsoleTimeout extends Error {
  override readonly name = 'GuestConsoleTimeout';
}

export async function readConsole(consolePath: string): Promise<string> {
  return readFile(consolePath, 'utf8').catch((err: unknown) => {
    if (errnoCode(err) === 'ENOENT') return '';
    throw err;
  });
}

/**
 * Resolves with the console text once `pattern` matches in what was written after `fromOffset`
 * characters (so a restarted guest is not taken as ready on its previous boot's lines).
 */
export async function waitForConsole(consolePath: string, pattern: RegExp, options: { timeoutMs: number; fromOffset?: number; intervalMs?: number }): Promise<string> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const text = (await readConsole(consolePath)).slice(options.fromOffset ?? 0);
    if (pattern.test(text)) return text;
    if (Date.now() > deadline) throw new GuestConsoleTimeout(`no ${pattern} on the guest console within ${options.timeoutMs} ms; last lines: ${text.split('\n').slice(-5).join(' | ')}`);
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 200));
  }
}

export const GUEST_READY_RE = /^SNAPGUEST ready workload=\S+\s*$/m;

/** The boot ids the guest reported, oldest first: a new one means the guest kernel restarted. */
export function bootIds(consoleText: string): string[] {
  return [...consoleText.matchAll(/^SNAPGUEST boot_id=([0-9a-f-]{36})\s*$/gm)].map((m) => m[1] ?? '');
}
