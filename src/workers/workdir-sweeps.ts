// The host worker's sweeps of snapshot work dirs (src/reconciler/workdir-sweeper.ts): one before
// it polls, for what runs closed while no worker was here left behind, then one per interval while
// it runs, for a run terminated meanwhile: nothing of it compensates, and a cold run terminated
// after its managedSave and before its restore (or between restarting its guest paused and resuming
// it) would leave the guest saved (or paused) until the next start-up.
import type { Logger } from 'pino';
import { sweepClosedWorkDirs, type SweepOptions, type SweepReport } from '../reconciler/workdir-sweeper';

export interface WorkDirSweeps {
  stop(): void;
}

function logReport(log: Logger, report: SweepReport, when: string): void {
  const { removed, kept, stoppedExports, abortedJobs, returnedGuests } = report;
  if (removed.length + abortedJobs.length + returnedGuests.length === 0 && (when !== 'start-up' || kept.length === 0)) return;
  log.info({ removed: removed.length, kept: kept.length, stopped_exports: stoppedExports.length, aborted_jobs: abortedJobs.length, returned_guests: returnedGuests }, `snapshot work dirs swept (${when})`);
}

/** Runs the start-up sweep, then one sweep every `intervalMs` (never two at once) until stop(). */
export async function startWorkDirSweeps(options: SweepOptions & { intervalMs: number }): Promise<WorkDirSweeps> {
  const { intervalMs, ...sweep } = options;
  logReport(options.log, await sweepClosedWorkDirs(sweep), 'start-up');
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const next = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      sweepClosedWorkDirs(sweep).then(
        (report) => logReport(options.log, report, 'periodic'),
        (err: unknown) => options.log.warn({ err }, 'periodic work dir sweep failed; retrying next round'),
      ).finally(next);
    }, intervalMs);
    timer.unref();
  };
  next();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
