// Runs the reconciler once at control-worker start and then every interval, in the control worker
// process itself.
//
// Why a timer loop and not a `reconcileSnapshots` workflow on a Temporal Schedule: a pass keeps no
// state between runs and is idempotent and safe to run on several nodes at once (every action is a
// CAS on what it saw or a delete-unless-active), so durability buys nothing; a schedule would be
// one more cluster object to create, update on every interval change and clean up, and each pass
// would add a workflow history for work that is mostly "nothing to do". A loop per control node
// also keeps clean-up going when only one control node is left. Jitter spreads the nodes' passes.
import type { Logger } from 'pino';
import type { ReconcileReport, SnapshotReconciler } from './snapshot-reconciler';

export interface ReconcileLoopOptions {
  reconciler: Pick<SnapshotReconciler, 'runOnce'>;
  intervalMs: number;
  log: Logger;
  /** fraction of the interval added at random to each wait (default 0.2) */
  jitter?: number;
  onPass?: (report: ReconcileReport) => void;
}

export interface ReconcileLoop {
  /** runs a pass now (or waits for the one in progress) and returns its report */
  runNow(): Promise<ReconcileReport | undefined>;
  /** stops the timer and waits for a pass in progress */
  stop(): Promise<void>;
}

export function startReconcileLoop(options: ReconcileLoopOptions): ReconcileLoop {
  const { reconciler, intervalMs, log } = options;
  const jitter = options.jitter ?? 0.2;
  let timer: NodeJS.Timeout | undefined;
  let inFlight: Promise<ReconcileReport | undefined> | undefined;
  let stopped = false;

  const pass = async (): Promise<ReconcileReport | undefined> => {
    try {
      const report = await reconciler.runOnce();
      if (report.resetInstances.length > 0 || report.deletedImages.length > 0 || report.deletedSchedules.length > 0 || report.pausedSchedules.length > 0) {
        log.info({ reset: report.resetInstances.length, deleted: report.deletedImages.length, schedules_deleted: report.deletedSchedules.length, schedules_paused: report.pausedSchedules.length, skipped: report.skipped.length, ms: report.durationMs }, 'reconcile pass cleaned interrupted snapshots and swept backup schedules');
      }
      options.onPass?.(report);
      return report;
    } catch (err) {
      // Temporal or the image service unreachable: nothing was changed; the next pass retries.
      log.warn({ err }, 'reconcile pass failed; retrying at the next interval');
      return undefined;
    }
  };
  const runNow = (): Promise<ReconcileReport | undefined> => {
    inFlight ??= pass().finally(() => {
      inFlight = undefined;
    });
    return inFlight;
  };
  const schedule = (): void => {
    if (stopped) return;
    const wait = intervalMs * (1 + Math.random() * jitter);
    timer = setTimeout(() => void runNow().finally(schedule), wait);
    timer.unref();
  };

  void runNow().finally(schedule);
  return {
    runNow,
    async stop() {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      await inFlight;
    },
  };
}
