// How every service process starts and stops (compute API, image service, control and host
// workers): one room below them all, since none of them owns the others' lifecycle.
import type { Logger } from 'pino';
import { errorStack } from '../contract';

/**
 * Runs a service's main: failures at start print one clear line and exit 1; SIGTERM/SIGINT call
 * `stop` once. A process started by `npm start` also exits when its parent's pipe closes, so a
 * killed orchestrator leaves no worker behind.
 */
export function runMain(name: string, main: () => Promise<{ stop(): Promise<void> }>, log?: Logger): void {
  main().then(
    (service) => {
      let stopping = false;
      const stop = (reason: string): void => {
        if (stopping) return;
        stopping = true;
        log?.info({ reason }, `${name} stopping`);
        service.stop().then(
          () => process.exit(0),
          (err: unknown) => {
            log?.error({ err }, `${name} did not stop cleanly`);
            process.exit(1);
          },
        );
      };
      process.on('SIGTERM', () => stop('SIGTERM'));
      process.on('SIGINT', () => stop('SIGINT'));
      if (process.env.SNAP_EXIT_WITH_PARENT === '1') {
        process.stdin.on('end', () => stop('parent exited'));
        process.stdin.resume();
      }
    },
    (err: unknown) => {
      process.stderr.write(`${name} failed to start: ${errorStack(err)}\n`);
      process.exit(1);
    },
  );
}
