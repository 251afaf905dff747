// Every bench registers what it creates (domains, servers, temp dirs, child processes) here. The
// stack is unwound in reverse on success, on failure and on SIGINT/SIGTERM, so nothing a bench
// made outlives it even when it is interrupted half-way through a measurement.
import { errorMessage, errorStack } from '../../src/contract';

interface CleanupEntry {
  label: string;
  run: () => Promise<void>;
}

const stack: CleanupEntry[] = [];
let unwinding: Promise<void> | null = null;

/** Registers a cleanup; the returned function runs it now (once) and unregisters it. */
export function onCleanup(label: string, run: () => Promise<void>): () => Promise<void> {
  const entry: CleanupEntry = { label, run };
  stack.push(entry);
  return async () => {
    const index = stack.indexOf(entry);
    if (index < 0) return;
    stack.splice(index, 1);
    await entry.run();
  };
}

/** Runs every registered cleanup, newest first; one failing never stops the others. */
export function runCleanups(): Promise<void> {
  unwinding ??= (async () => {
    while (stack.length > 0) {
      const entry = stack.pop();
      if (!entry) break;
      try {
        await entry.run();
      } catch (e) {
        process.stderr.write(`cleanup "${entry.label}" failed: ${errorMessage(e)}\n`);
      }
    }
  })();
  return unwinding;
}

/**
 * Entry point wrapper: runs `body`, then the cleanups, whatever happened. A signal unwinds the
 * stack first and exits 130/143; a second signal exits at once (the operator insists).
 */
export function runBench(name: string, body: () => Promise<void>): void {
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (signalled) process.exit(1);
    signalled = true;
    process.stderr.write(`\n${name}: ${signal}, cleaning up…\n`);
    void runCleanups().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  body()
    .then(
      () => 0,
      (e: unknown) => {
        process.stderr.write(`${name} failed: ${errorStack(e)}\n`);
        return 1;
      },
    )
    .then(async (code) => {
      await runCleanups();
      // Worker native handles can keep the loop alive after shutdown; the bench is over.
      process.exit(code);
    })
    .catch(() => process.exit(1));
}
